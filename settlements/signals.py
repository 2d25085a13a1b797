"""News the settlements app announces to the apps above it (risk, customers).

``transactions_ingested`` is sent after commit with ``transaction_ids``: the
ids of the transactions that batch, webhook or CSV ingestion newly stored
(never those that were already present).
"""

from django.dispatch import Signal

transactions_ingested = Signal()
