"""Check the audit trail: every entry's MAC, every seal's link, the last
checkpoint outside the database and, with ``--records``, the records the
trail proves.

    manage.py verify_audit_trail                  # the live trail; the result goes on the trail
    manage.py verify_audit_trail --records        # also ledger, history rows, current rows
    manage.py verify_audit_trail --no-record      # just look
    manage.py verify_audit_trail --bundle FILE    # an evidence bundle or archive file, offline

Exit status 0 when intact, 1 when anything does not match (each problem is
printed, naming the entry, seal, checkpoint or record).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core import audit, evidence, services


class Command(BaseCommand):
    help = "Verify the audit trail (or an exported evidence bundle)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bundle", help="Check this evidence bundle or archive file instead")
        parser.add_argument(
            "--records",
            action="store_true",
            help="Also compare the ledger, history rows and current rows with the trail",
        )
        parser.add_argument(
            "--no-record", action="store_true", help="Do not put the result on the trail"
        )

    def handle(self, *args, bundle: str | None, records: bool, no_record: bool, **options):
        if bundle:
            self._bundle(Path(bundle))
            return
        with audit.acting_as(services.system_user(), origin="command verify_audit_trail"):
            result = services.audit_verify(records=records, record=not no_record)
        if result.pending:
            self.stdout.write(f"{result.pending} entries written meanwhile are not sealed yet.")
        if result.checkpoint:
            self.stdout.write(f"Checkpoint: {result.checkpoint}")
        if result.intact:
            self.stdout.write(self.style.SUCCESS(result.summary()))
            return
        for problem in result.problems:
            self.stdout.write(self.style.ERROR(problem))
        self.stdout.write(self.style.ERROR(result.summary()))
        raise SystemExit(1)

    def _bundle(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        check = evidence.verify_bundle(raw)
        self.stdout.write(f"Signing key fingerprint: {check.key_fingerprint or '-'}")
        self.stdout.write(
            f"Signature: {'valid' if check.signature_valid else 'INVALID'}; "
            f"{check.entries} entries, {check.seals} seals checked"
        )
        if check.ok:
            self.stdout.write(self.style.SUCCESS(f"intact: {check.entries} entries"))
            return
        for problem in check.problems[:20]:
            self.stdout.write(self.style.ERROR(problem))
        raise SystemExit(1)
