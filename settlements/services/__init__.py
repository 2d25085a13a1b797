"""Settlement writes, one module per area; callers import the module they need:

``ingestion`` (ledger writes), ``fx`` (rates), ``agreements`` (revenue share),
``runs`` (settlement runs, adjustments, approvals), ``exports`` (files of an
approved run), ``reconciliation`` (gateway reports against the ledger).
"""
