"""core.spreadsheet: the one writer of files people open in a spreadsheet."""

import ast
import csv
import io
from pathlib import Path

import pytest

from core import spreadsheet

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x.test")', '\'=HYPERLINK("http://x.test")'),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.50", "-12.50"),  # a plain number stays one
        ("12", "12"),
        ("Jade = Agents", "Jade = Agents"),
        ("", ""),
    ],
)
def test_text_a_spreadsheet_would_run_gets_an_apostrophe(value, written):
    assert spreadsheet.safe_cell(value) == written
    header, row = csv.reader(io.StringIO(spreadsheet.csv_bytes(["h"], [[value]]).decode()))
    assert (header, row) == (["h"], [written])


def test_numbers_and_dates_are_left_to_the_csv_module():
    assert spreadsheet.safe_cell(-5) == -5
    assert spreadsheet.xlsx_cell(None) is None


def test_xlsx_cells_lose_the_control_characters_the_format_cannot_hold():
    assert spreadsheet.xlsx_cell("A\x07B\x1bC\tD") == "ABC\tD"
    assert spreadsheet.xlsx_cell("=\x07cmd") == "'=cmd"


def test_no_module_writes_csv_but_through_core_spreadsheet():
    """The class of issue 12 finding 9: a csv.writer of its own skips the guard."""
    offenders = []
    for package in ("core", "merchants", "onboarding", "settlements", "risk", "customers"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "spreadsheet.py" and path.parent.name == "core":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in ("writer", "DictWriter")
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "csv"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
