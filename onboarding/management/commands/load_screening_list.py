"""Replace the screening list with the entries of a CSV file.

CSV format (UTF-8, header row): ``name,aliases,country,source`` where
``aliases`` is a semicolon-separated list (may be empty), ``country`` an ISO
3166 alpha-2 code (may be empty) and ``source`` names the list (e.g. "OFAC SDN").
The file replaces the whole list in one transaction; a bad row aborts it.
"""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core import audit
from core.services import system_user
from onboarding.models import ScreeningEntry

DEMO = Path(__file__).resolve().parents[2] / "data" / "screening_demo.csv"


class Command(BaseCommand):
    help = "Load a sanctions/PEP screening list from CSV (name,aliases,country,source)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "path", nargs="?", default=str(DEMO), help="CSV file (default: demo list)"
        )

        parser.add_argument(
            "--if-empty", action="store_true", help="Load only when no list is loaded yet."
        )

    def handle(self, *args, path: str, if_empty: bool, **options) -> None:
        if if_empty and ScreeningEntry.objects.exists():
            self.stdout.write("A screening list is loaded already; left as it is.")
            return
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"name", "source"} <= set(reader.fieldnames):
            raise CommandError("The CSV needs the columns name,aliases,country,source.")
        entries = []
        for line, row in enumerate(reader, start=2):
            name, source = (row.get("name") or "").strip(), (row.get("source") or "").strip()
            if not name or not source:
                raise CommandError(f"Line {line}: name and source are required.")
            country = (row.get("country") or "").strip().upper()
            if country and len(country) != 2:
                raise CommandError(f"Line {line}: country must be a 2-letter code.")
            aliases = [a.strip() for a in (row.get("aliases") or "").split(";") if a.strip()]
            entries.append(
                ScreeningEntry(name=name, aliases=aliases, country=country, source=source)
            )
        with (
            audit.acting_as(system_user(), origin="command load_screening_list"),
            transaction.atomic(),
        ):
            ScreeningEntry.objects.all().delete()
            for entry in entries:
                audit.stamp(entry, actor=None, reason=f"loaded from {Path(path).name}")
                entry.save()
        self.stdout.write(
            self.style.SUCCESS(f"{len(entries)} screening entries loaded from {path}.")
        )
