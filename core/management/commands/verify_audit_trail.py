"""Walk the audit trail's hash chain and report the first broken link, or "intact".

    manage.py verify_audit_trail                  # the live trail; the result goes on the trail
    manage.py verify_audit_trail --no-record      # just look
    manage.py verify_audit_trail --bundle FILE    # an evidence bundle or archive file, offline

Exit status 0 when intact, 1 when a link is broken or a bundle fails its checks.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core import audit, evidence, trail
from core.services import system_user


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (or an exported evidence bundle)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--bundle", help="Check this evidence bundle or archive file instead")
        parser.add_argument(
            "--no-record", action="store_true", help="Do not put the result on the trail"
        )

    def handle(self, *args, bundle: str | None, no_record: bool, **options) -> None:
        if bundle:
            self._bundle(Path(bundle))
            return
        with audit.acting_as(system_user(), origin="command verify_audit_trail"):
            # Whatever a crashed writer left unsealed is chained first.
            trail.seal()
            result = trail.verify()
            if not no_record:
                trail.record_verification(result)
        if result.pending:
            self.stdout.write(f"{result.pending} entries written meanwhile are not sealed yet.")
        if result.intact:
            self.stdout.write(self.style.SUCCESS(result.summary()))
            return
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
            f"{check.entries} entries, {check.links_checked} links between consecutive entries"
        )
        if check.ok:
            self.stdout.write(self.style.SUCCESS(f"intact: {check.entries} entries"))
            return
        for problem in check.problems[:20]:
            self.stdout.write(self.style.ERROR(problem))
        raise SystemExit(1)
