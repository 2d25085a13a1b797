"""Move audit entries older than the retention period to a signed archive file.

    manage.py archive_audit_trail --output audit-archive-2026.json [--dry-run]

Only entries older than ``AUDIT_RETENTION_DAYS`` (default seven years) can
leave the database, and only the oldest run of them in chain order. The file
is an evidence bundle (check it with ``verify_audit_trail --bundle FILE``). An
``archive`` entry on the trail records the last archived seq and hash and the
file's SHA-256; the database trigger lets exactly those entries be deleted,
and ``verify_audit_trail`` starts from that recorded hash, so the chain stays
verifiable across the boundary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core import audit, evidence, trail
from core.models import AuditEntry
from core.services import system_user


class Command(BaseCommand):
    help = "Archive audit entries older than the retention period to a file."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--output", required=True, help="Archive file to write (must not exist)"
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be archived")

    def handle(self, *args, output: str, dry_run: bool, **options) -> None:
        path = Path(output)
        if path.exists():
            raise CommandError(f"{path} exists; archives are never overwritten.")
        cutoff = timezone.now() - dt.timedelta(days=settings.AUDIT_RETENTION_DAYS)
        with audit.acting_as(system_user(), origin="command archive_audit_trail"):
            trail.seal()
            check = trail.verify()
            if not check.intact:
                raise CommandError(f"The trail is not intact, nothing archived: {check.summary()}")
            through = _archivable_through(cutoff)
            if through is None:
                self.stdout.write(f"Nothing older than {cutoff:%Y-%m-%d} to archive.")
                return
            entries = AuditEntry.objects.filter(seq__lte=through).order_by("seq")
            count = entries.count()
            if dry_run:
                self.stdout.write(f"Would archive {count} entries (up to seq {through}).")
                return
            with transaction.atomic():
                rows = list(entries.select_for_update())
                raw = evidence.build_bundle(
                    rows,
                    filters={"archive_through_seq": through, "older_than": cutoff.isoformat()},
                    generated_by="archive_audit_trail",
                    verification=check.as_dict(),
                )
                path.write_bytes(raw)
                last = rows[-1]
                trail.append(
                    action=trail.Action.ARCHIVE,
                    model="core.auditentry",
                    object_label="audit trail",
                    changes={
                        "first_seq": [None, rows[0].seq],
                        "through_seq": [None, through],
                        "last_hash": [None, last.hash],
                        "entries": [None, count],
                        "file": [None, path.name],
                        "file_sha256": [None, hashlib.sha256(raw).hexdigest()],
                    },
                    reason=f"retention {settings.AUDIT_RETENTION_DAYS} days",
                )
                # Sealed now, inside this transaction: the trigger only lets
                # entries a sealed archive entry covers be deleted.
                trail.seal()
                AuditEntry.objects.filter(seq__lte=through)._raw_delete(using="default")
        self.stdout.write(
            self.style.SUCCESS(f"{count} entries up to seq {through} archived to {path}.")
        )


def _archivable_through(cutoff: dt.datetime) -> int | None:
    """The last seq of the oldest unbroken run of entries older than ``cutoff``."""
    first_young = (
        AuditEntry.objects.filter(seq__isnull=False, created_at__gte=cutoff)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    older = AuditEntry.objects.filter(seq__isnull=False)
    if first_young is not None:
        older = older.filter(seq__lt=first_young)
    return older.order_by("-seq").values_list("seq", flat=True).first()
