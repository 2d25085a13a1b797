"""CSV import with dry run and row report; CSV/XLSX export of the visible list."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from openpyxl import load_workbook

from merchants.models import Contact, Merchant
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

HEADER = (
    "legal_name,registration_number,country,business_type,mcc,"
    "expected_monthly_volume,volume_currency,tags\n"
)
GOOD = [
    'Jade Noodles Limited,11111111,HK,private_company,5812,"250,000.00",HKD,"retail, pos"\n',
    "Lotus Travel Pte. Ltd.,202400001K,SG,private_company,4722,120000,SGD,\n",
    "Coral Pharmacy Sdn. Bhd.,202401000001,MY,private_company,5912,80000,MYR,\n",
]
BAD = [
    "Bad Mcc Limited,22222222,HK,private_company,0001,1000,HKD,\n",
    "Nowhere Limited,33333333,XX,private_company,5812,abc,HKD,\n",
]


def _csv(*lines: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("merchants.csv", "".join([HEADER, *lines]).encode())


def _dry_run(client, upload, kind="merchants", only_valid=False):
    data = {"kind": kind, "file": upload}
    if only_valid:
        data["only_valid"] = "on"
    return client.post(reverse("merchants:import"), data)


def _confirm(client, response, only_valid=False):
    data = {
        "kind": response.context["kind"],
        "payload": response.context["payload"],
        "confirm": "on",
    }
    if only_valid:
        data["only_valid"] = "on"
    return client.post(reverse("merchants:import"), data)


def test_dry_run_writes_nothing_and_reports_every_bad_row(web, sales1):
    response = _dry_run(web(sales1), _csv(GOOD[0], BAD[0], GOOD[1], BAD[1], GOOD[2]))
    report = response.context["report"]
    assert (report.rows, report.valid, report.invalid_rows) == (5, 3, 2)
    found = {(e.row, e.column) for e in report.errors}
    # every problem of a row is listed, not only the first
    assert {(3, "mcc"), (5, "country"), (5, "expected_monthly_volume")} <= found
    messages = " ".join(e.message for e in report.errors)
    assert "ISO 18245" in messages
    assert not Merchant.objects.exists()


def test_an_import_with_bad_rows_writes_nothing_unless_only_valid_is_chosen(web, sales1):
    client = web(sales1)
    dry = _dry_run(client, _csv(GOOD[0], BAD[0], GOOD[1]))
    refused = _confirm(client, dry)
    assert not refused.context["report"].written
    assert not Merchant.objects.exists()

    dry = _dry_run(client, _csv(GOOD[0], BAD[0], GOOD[1]), only_valid=True)
    done = _confirm(client, dry, only_valid=True)
    assert done.context["report"].created == 2
    assert set(Merchant.objects.values_list("registration_number", flat=True)) == {
        "11111111",
        "202400001K",
    }
    jade = Merchant.objects.get(registration_number="11111111")
    assert jade.owner == sales1
    assert jade.tags == ["retail", "pos"]
    assert str(jade.expected_monthly_volume) == "250000.0000"
    created = jade.history.get(history_type="+")
    assert (created.history_user, created.history_change_reason) == (sales1, "import")


def test_duplicates_inside_the_file_and_missing_columns_are_reported(web, sales1):
    response = _dry_run(web(sales1), _csv(GOOD[0], GOOD[0]))
    errors = response.context["report"].errors
    assert [(e.row, e.column) for e in errors] == [(3, "registration_number")]
    bad_header = SimpleUploadedFile("x.csv", b"legal_name,country\nA,HK\n")
    response = _dry_run(web(sales1), bad_header)
    assert response.status_code == 400
    assert "lacks the column" in response.content.decode()


def test_contact_import_cannot_reach_another_owners_merchant(web, sales1, sales2):
    theirs = MerchantFactory(owner=sales1, registration_number="55555555")
    mine = MerchantFactory(owner=sales2, registration_number="66666666")
    text = (
        "merchant,merchant_country,name,email\n"
        f"{theirs.registration_number},HK,Spy,spy@example.com\n"
        f"{mine.registration_number},HK,Ada Wong,ada@example.com\n"
    )
    client = web(sales2)
    dry = _dry_run(client, SimpleUploadedFile("c.csv", text.encode()), kind="contacts")
    report = dry.context["report"]
    assert [(e.row, e.column) for e in report.errors] == [(2, "merchant")]
    assert "that you can access" in report.errors[0].message
    _confirm(client, dry)
    assert not Contact.objects.exists()
    dry = _dry_run(client, SimpleUploadedFile("c.csv", text.encode()), "contacts", only_valid=True)
    _confirm(client, dry, only_valid=True)
    assert list(Contact.objects.values_list("merchant_id", "name")) == [(mine.pk, "Ada Wong")]


def test_a_tampered_confirmation_is_refused(web, sales1):
    client = web(sales1)
    dry = _dry_run(client, _csv(GOOD[0]))
    forged = dry.context["payload"][:-3] + "abc"
    response = client.post(
        reverse("merchants:import"), {"kind": "merchants", "payload": forged, "confirm": "on"}
    )
    assert response.status_code == 400
    assert not Merchant.objects.exists()


def test_lines_are_counted_as_in_the_file_and_existing_merchants_name_the_column(web, sales1):
    MerchantFactory(registration_number="11111111", country="HK")
    text = HEADER + GOOD[1] + "\n" + GOOD[0]  # a blank line 3, the duplicate on line 4
    response = _dry_run(web(sales1), SimpleUploadedFile("m.csv", text.encode()))
    errors = response.context["report"].errors
    assert [(e.row, e.column) for e in errors] == [(4, "registration_number")]
    assert "already exists" in errors[0].message


def test_import_needs_an_add_permission(web):
    finance = UserFactory(roles=["finance"])
    assert web(finance).get(reverse("merchants:import")).status_code == 403


def _export_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_holds_only_visible_merchants_and_honours_filters(web, sales1, sales2):
    mine = MerchantFactory(owner=sales1, legal_name="=HYPERLINK(evil) Limited", risk_level="high")
    MerchantFactory(owner=sales1, legal_name="Quiet Limited")
    theirs = MerchantFactory(owner=sales2)
    rows = _export_rows(web(sales1).get(reverse("merchants:export")))
    names = [r[1] for r in rows[1:]]
    assert rows[0][:3] == ["id", "legal_name", "trading_name"]
    assert theirs.legal_name not in names
    assert "'=HYPERLINK(evil) Limited" in names  # formula neutralised
    filtered = _export_rows(web(sales1).get(reverse("merchants:export"), {"risk_level": "high"}))
    assert [int(r[0]) for r in filtered[1:]] == [mine.pk]


def test_xlsx_export_holds_only_visible_merchants(web, sales1, sales2):
    MerchantFactory.create_batch(2, owner=sales1)
    MerchantFactory(owner=sales2)
    response = web(sales1).get(reverse("merchants:export"), {"format": "xlsx"})
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "id"
    assert {r[9] for r in rows[1:]} == {"sales1"}
    assert len(rows) == 3


def test_xlsx_export_survives_a_control_character_stored_in_a_name(web, sales1):
    """Issue 12 finding 7: one control character in a legal name broke the
    XLSX export for everyone (openpyxl refuses it)."""
    merchant = MerchantFactory(owner=sales1)
    Merchant.objects.filter(pk=merchant.pk).update(legal_name="Bell\x07 Trading\x1b Limited")
    response = web(sales1).get(reverse("merchants:export"), {"format": "xlsx"})
    assert response.status_code == 200
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[1][1] == "Bell Trading Limited"


@pytest.mark.parametrize("count", [5, 30])
def test_export_runs_a_constant_number_of_queries(web, sales1, count, django_assert_num_queries):
    MerchantFactory.create_batch(count, owner=sales1)
    client = web(sales1)
    # nine for the export; its own line on the audit trail takes a savepoint
    # and its release around allocating the entry's id (SQLite: the highest
    # id and the table's sequence) and the INSERT. PostgreSQL takes the id
    # from the sequence in one query and streams the row by COPY, which the
    # query log does not see.
    audit_line = 3 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(9 + audit_line):
        response = client.get(reverse("merchants:export"))
        assert len(_export_rows(response)) == count + 1


def test_an_export_is_on_the_audit_trail_with_its_filters(web, sales1):
    from core.models import AuditEntry

    MerchantFactory(owner=sales1)
    web(sales1).get(reverse("merchants:export"), {"risk_level": "high", "format": "xlsx"})
    entry = AuditEntry.objects.get(action="export")
    assert entry.actor == sales1
    assert entry.object_label == "merchant list XLSX"
    assert entry.changes == {"filters": [None, "risk_level=high"]}
