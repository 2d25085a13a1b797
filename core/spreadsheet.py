"""Cells for files people open in a spreadsheet: every CSV the project writes.

A spreadsheet runs a cell that starts like a formula (``=``, ``+``, ``-``,
``@``, a tab or a carriage return): a partner named ``=HYPERLINK(…)`` in a
payout file would run on the finance desk (CSV injection, OWASP). Such text
gets a leading apostrophe, which spreadsheets show as text and hide. Plain
numbers ("-12.50") stay as they are: a spreadsheet reads them as numbers,
and an ERP import needs them unchanged.

``writer`` is the one CSV writer: the payout and journal files, the merchant
and audit exports all go through it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def safe_text(value: str) -> str:
    """``value``, with an apostrophe first when a spreadsheet would run it."""
    if value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_cell(value: Any) -> Any:
    """A cell's value: text made safe, anything else (numbers, dates) as given."""
    return safe_text(value) if isinstance(value, str) else value


def xlsx_cell(value: Any) -> Any:
    """A worksheet cell's value: safe text without the control characters
    the XLSX format cannot hold (one in a legal name broke the whole file)."""
    if isinstance(value, str):
        return safe_text(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


class _SafeWriter:
    """``csv.writer`` whose rows' text cells go through :func:`safe_cell`."""

    def __init__(self, out, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **options: Any) -> _SafeWriter:
    return _SafeWriter(out, **options)


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable[Any]], **options: Any) -> bytes:
    """A whole UTF-8 file."""
    buffer = io.StringIO()
    out = writer(buffer, **options)
    out.writerow(header)
    out.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """A file streamed line by line, starting with a BOM so that Excel reads UTF-8."""
    buffer = io.StringIO()
    out = writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    out.writerow(header)
    yield "\ufeff" + flush()
    for row in rows:
        out.writerow(row)
        yield flush()
