"""Move audit entries older than the retention period to a signed archive file.

    manage.py archive_audit_trail --output audit-archive-2026.json [--dry-run]

Only whole seals older than ``AUDIT_RETENTION_DAYS`` (default seven years)
leave the database, oldest first, with their entries (entries of the earlier
unkeyed chain go first, all together, once they are all that old). The file
is an evidence bundle with the seals and entries (check it with
``verify_audit_trail --bundle FILE``). An authenticated ``archive`` entry
records the last archived seal (seq, MAC, running total), the file's name
and SHA-256; the database guard lets exactly those entries and seals be
deleted, and only once they are older than the retention period, and
``verify_audit_trail`` continues the chain from that recorded seal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from core import audit, evidence, services, trail
from core.models import AuditEntry, AuditSeal


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
        with audit.acting_as(services.system_user(), origin="command archive_audit_trail"):
            check = services.audit_verify()
            if not check.intact:
                raise CommandError(f"The trail is not intact, nothing archived: {check.summary()}")
            legacy = list(AuditEntry.objects.filter(seq__isnull=False).order_by("seq"))
            if any(e.created_at >= cutoff for e in legacy):
                legacy, seals = [], []  # the earlier chain goes first, whole
            else:
                seals = _archivable_seals(cutoff)
            if not legacy and not seals:
                self.stdout.write(f"Nothing older than {cutoff:%Y-%m-%d} to archive.")
                return
            entries = legacy + (list(trail.covered(seals[0].low, seals[-1].high)) if seals else [])
            if dry_run:
                self.stdout.write(f"Would archive {len(entries)} entries and {len(seals)} seals.")
                return
            raw = evidence.build_bundle(
                entries,
                filters={"older_than": cutoff.isoformat()},
                generated_by="archive_audit_trail",
                verification=check.as_dict(),
                seals=seals,
            )
            path.write_bytes(raw)
            last = seals[-1] if seals else None
            start = trail.chain_start()
            values = {
                "through_seal": last.seq if last else start[0],
                "through_high": last.high if last else start[1],
                "through_mac": last.mac if last else start[2],
                "total": last.total if last else start[3],
                "entries": len(entries),
                "seals": len(seals),
                "file": path.name,
                "file_sha256": hashlib.sha256(raw).hexdigest(),
                "older_than": cutoff.isoformat(),
                "retention_days": settings.AUDIT_RETENTION_DAYS,
            }
            if legacy:
                values["legacy_through_seq"] = legacy[-1].seq
                values["legacy_through_hash"] = legacy[-1].hash
            with transaction.atomic():
                trail.record_system(
                    trail.Action.ARCHIVE,
                    values,
                    reason=f"retention {settings.AUDIT_RETENTION_DAYS} days",
                )
            # The archive entry is committed: the guard now lets exactly
            # what it covers go.
            with transaction.atomic():
                if legacy:
                    AuditEntry.objects.filter(seq__lte=legacy[-1].seq)._raw_delete("default")
                if seals:
                    covered = AuditEntry.objects.filter(seq__isnull=True)
                    key = "txid" if connection.vendor == "postgresql" else "id"
                    covered.filter(**{f"{key}__lt": last.high})._raw_delete("default")
                    AuditSeal.objects.filter(seq__lte=last.seq)._raw_delete("default")
        self.stdout.write(
            self.style.SUCCESS(f"{len(entries)} entries and {len(seals)} seals archived to {path}.")
        )


def _archivable_seals(cutoff: dt.datetime) -> list[AuditSeal]:
    """The oldest unbroken run of seals made before ``cutoff``."""
    young = AuditSeal.objects.filter(created_at__gte=cutoff).order_by("seq").first()
    older = AuditSeal.objects.order_by("seq")
    if young is not None:
        older = older.filter(seq__lt=young.seq)
    return list(older)
