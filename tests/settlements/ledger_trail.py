"""What the audit trail says about ledger batches: their entries and the rows they prove.

Ingestion writes one entry per batch naming the created rows by id ranges,
with a keyed digest over their content (the ledger keeps no history
table). These helpers read those entries back and recompute the root from
the rows as the database holds them now.
"""

from core import trail
from core.models import AuditEntry
from settlements.models import Transaction

LEDGER = Transaction._meta.label_lower


def batch_entries(**filters):
    """Ingestion's batch entries, oldest first (not the one-row entries of
    ``TransactionFactory``)."""
    return (
        AuditEntry.objects.filter(model=LEDGER, row_model=LEDGER, **filters)
        .exclude(reason="test factory")
        .order_by("id")
    )


def proven_ids(entry: AuditEntry) -> list[int]:
    """The ledger ids an entry proves, ascending."""
    return list(trail.ids_of(entry.row_ids))


def stored_digest(entry: AuditEntry) -> str:
    """The entry's row digest recomputed from the stored rows' column values."""
    fields = trail.digest_fields(Transaction)
    rows = Transaction.objects.filter(pk__in=proven_ids(entry)).values_list(
        *(f.attname for f in fields)
    )
    return trail.values_digest(fields, list(rows), entry.key_id)


def stored_objects_digest(entry: AuditEntry) -> str:
    """The same, from the stored rows loaded as model instances."""
    rows = list(Transaction.objects.filter(pk__in=proven_ids(entry)).order_by("pk"))
    return trail.objects_digest(rows, entry.key_id)
