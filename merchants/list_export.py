"""CSV and XLSX export of a (permission-filtered) merchant queryset."""

from __future__ import annotations

import io
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from core import spreadsheet
from merchants.models import Merchant

COLUMNS = (
    "id", "legal_name", "trading_name", "registration_number", "country", "business_type", "mcc",
    "status", "risk_level", "owner", "team", "partner", "mid", "expected_monthly_volume",
    "volume_currency", "tags", "created_at",
)  # fmt: skip
WIDTHS = {"legal_name": 40, "trading_name": 30, "registration_number": 22, "partner": 28,
          "team": 22, "created_at": 20, "expected_monthly_volume": 22, "tags": 24}  # fmt: skip


def _values(m: Merchant) -> list:
    return [
        m.pk, m.legal_name, m.trading_name, m.registration_number, m.country.code,
        m.business_type, m.mcc, m.status, m.risk_level, m.owner.username,
        m.team.name if m.team else "", m.partner.name if m.partner else "", m.mid or "",
        m.expected_monthly_volume, m.volume_currency, ", ".join(m.tags or []),
        timezone.localtime(m.created_at).replace(tzinfo=None),
    ]  # fmt: skip


def _rows(queryset: QuerySet[Merchant]) -> Iterator[list]:
    qs = queryset.select_related("owner", "team", "partner").order_by("legal_name", "pk")
    for merchant in qs.iterator(chunk_size=2000):
        yield _values(merchant)


def csv_lines(queryset: QuerySet[Merchant]) -> Iterator[str]:
    """UTF-8 CSV, streamed line by line (spreadsheet.csv_lines: BOM, formulas neutralised)."""
    rows = (
        [v.isoformat(sep=" ") if hasattr(v, "isoformat") else v for v in row]
        for row in _rows(queryset)
    )
    return spreadsheet.csv_lines(COLUMNS, rows)


def xlsx_bytes(queryset: QuerySet[Merchant]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Merchants")
    sheet.freeze_panes = "A2"
    for index, name in enumerate(COLUMNS, start=1):
        letter = chr(64 + index) if index <= 26 else "A" + chr(64 + index - 26)
        sheet.column_dimensions[letter].width = WIDTHS.get(name, 14)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    amount_at = COLUMNS.index("expected_monthly_volume")
    date_at = COLUMNS.index("created_at")
    for row in _rows(queryset):
        cells = [WriteOnlyCell(sheet, value=spreadsheet.xlsx_cell(v)) for v in row]
        cells[amount_at].number_format = "#,##0.00"
        cells[date_at].number_format = "yyyy-mm-dd hh:mm"
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
