"""API for partners and merchant records: every door permission-filtered."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import SensitiveAccess
from merchants import services
from merchants.models import BankAccount, Contact, Document
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def merchant(sales1):
    return MerchantFactory(owner=sales1)


def _url(merchant, records, pk=None, act=None):
    url = f"/api/v1/merchants/{merchant.pk}/{records}/"
    if pk:
        url += f"{pk}/"
    if act:
        url += f"{act}/"
    return url


def _account(merchant, number="004-123-456789012"):
    return services.bank_account_create(
        actor=merchant.owner,
        merchant=merchant,
        account_holder="Holder",
        bank_name="HSBC",
        country="HK",
        currency="HKD",
        account_number=number,
    )


CREATES = {
    "contacts": {"name": "Ada Wong", "email": "ada@example.com"},
    "owners": {
        "full_name": "Ada Wong",
        "nationality": "HK",
        "ownership_percent": "40.00",
        "id_number": "K1234567",
    },
    "bank-accounts": {
        "account_holder": "Jade Ltd",
        "bank_name": "HSBC",
        "country": "HK",
        "currency": "HKD",
        "account_number": "004-123-456789",
    },
    "activities": {"kind": "call", "subject": "Intro call"},
    "pricing": {
        "name": "Standard",
        "currency": "HKD",
        "rates": [{"method": "fps", "percent": "0.8000", "fixed_fee": "0"}],
    },
    "contracts": {"starts_on": "2026-12-01"},
}


@pytest.mark.parametrize("records", list(CREATES))
def test_owner_creates_and_lists_records(api, sales1, merchant, records):
    client = api(sales1)
    created = client.post(_url(merchant, records), CREATES[records], format="json")
    assert created.status_code == 201, created.json()
    listed = client.get(_url(merchant, records)).json()
    assert listed["count"] == 1
    detail = client.get(_url(merchant, records, created.json()["id"]))
    assert detail.status_code == 200


@pytest.mark.parametrize("records", list(CREATES))
def test_other_sales_user_gets_404_on_every_record_door(api, sales2, merchant, records):
    client = api(sales2)
    assert client.get(_url(merchant, records)).status_code == 404
    assert client.post(_url(merchant, records), CREATES[records], format="json").status_code == 404
    assert client.get(_url(merchant, records, 1)).status_code == 404


def test_nothing_is_created_through_a_404(api, sales2, merchant):
    api(sales2).post(_url(merchant, "contacts"), CREATES["contacts"], format="json")
    assert not Contact.objects.exists()


def test_compliance_reads_but_cannot_add(api, compliance1, merchant):
    services.contact_create(actor=merchant.owner, merchant=merchant, name="Ada")
    client = api(compliance1)
    assert client.get(_url(merchant, "contacts")).json()["count"] == 1
    response = client.post(_url(merchant, "contacts"), CREATES["contacts"], format="json")
    assert response.status_code == 403


def test_sensitive_values_are_masked_and_reveal_is_checked_and_recorded(
    api, sales1, compliance1, merchant
):
    account = _account(merchant)
    body = api(sales1).get(_url(merchant, "bank-accounts")).content.decode()
    assert "456789012" not in body
    assert "•••• 9012" in body
    assert "account_hash" not in body
    reveal = _url(merchant, "bank-accounts", account.pk, "reveal")
    assert api(sales1).post(reveal).status_code == 403
    response = api(compliance1).post(reveal)
    assert response.json() == {"account_number": "004123456789012"}
    assert SensitiveAccess.objects.get().user == compliance1


def test_owner_created_through_the_api_is_masked_in_the_response(api, sales1, merchant):
    response = api(sales1).post(_url(merchant, "owners"), CREATES["owners"], format="json")
    assert "K1234567" not in response.content.decode()
    assert response.json()["id_number_masked"] == "•••• 4567"


def test_bad_input_answers_400_naming_the_field(api, sales1, merchant):
    client = api(sales1)
    over = {**CREATES["owners"], "ownership_percent": "100.00"}
    client.post(_url(merchant, "owners"), CREATES["owners"], format="json")
    response = client.post(_url(merchant, "owners"), over, format="json")
    assert response.status_code == 400
    assert "ownership_percent" in response.json()
    bad_iban = {**CREATES["bank-accounts"], "country": "GB", "account_number": "GB00WEST1234"}
    response = client.post(_url(merchant, "bank-accounts"), bad_iban, format="json")
    assert response.status_code == 400
    assert "account_number" in response.json()
    assert BankAccount.objects.count() == 0


def test_document_upload_review_and_content_check(api, sales1, compliance1, merchant):
    client = api(sales1)
    ok = client.post(
        _url(merchant, "documents"),
        {"doc_type": "owner_id", "file": SimpleUploadedFile("id.pdf", PDF)},
        format="multipart",
    )
    assert ok.status_code == 201, ok.json()
    assert ok.json()["sha256"]
    assert "file" not in ok.json()
    fake = client.post(
        _url(merchant, "documents"),
        {"doc_type": "owner_id", "file": SimpleUploadedFile("id.pdf", b"plain text, not a pdf")},
        format="multipart",
    )
    assert fake.status_code == 400
    assert "file" in fake.json()
    review = api(compliance1).post(
        _url(merchant, "documents", ok.json()["id"], "review"),
        {"status": "rejected", "reason": "Expired ID"},
        format="json",
    )
    assert review.json()["status"] == "rejected"
    assert Document.objects.get().reviewed_by == compliance1


def test_task_completion_and_contract_signing(api, sales1, merchant):
    client = api(sales1)
    task = client.post(
        _url(merchant, "activities"),
        {"kind": "task", "subject": "Chase BR", "due_on": "2030-01-01"},
        format="json",
    ).json()
    done = client.post(_url(merchant, "activities", task["id"], "complete"))
    assert done.json()["done_at"] is not None
    contract = client.post(_url(merchant, "contracts"), CREATES["contracts"], format="json").json()
    signed = client.post(
        _url(merchant, "contracts", contract["id"], "sign"),
        {"signed_on": "2026-11-01", "signed_by": "Ada Wong"},
        format="json",
    )
    assert signed.json()["status"] == "signed"


@pytest.mark.parametrize("count", [5, 50])
def test_record_lists_run_a_constant_number_of_queries(
    api, sales1, merchant, count, django_assert_num_queries
):
    for i in range(count):
        services.contact_create(actor=sales1, merchant=merchant, name=f"Contact {i}")
        _account(merchant, number=f"004123{100000 + i}")
    client = api(sales1)
    with django_assert_num_queries(11):
        assert client.get(_url(merchant, "contacts")).json()["count"] == count
    with django_assert_num_queries(11):
        assert client.get(_url(merchant, "bank-accounts")).json()["count"] == count


def test_partners_api_lists_and_refuses_cycles_and_non_admins(api, admin1, sales1):
    client = api(admin1)
    top = client.post("/api/v1/partners/", {"name": "Top ISO", "kind": "iso"}, format="json")
    assert top.status_code == 201, top.json()
    sub = client.post(
        "/api/v1/partners/", {"name": "Sub", "parent": top.json()["id"]}, format="json"
    ).json()
    cycle = client.patch(
        f"/api/v1/partners/{top.json()['id']}/", {"parent": sub["id"]}, format="json"
    )
    assert cycle.status_code == 400
    assert "parent" in cycle.json()
    assert api(sales1).get("/api/v1/partners/").json()["count"] == 2
    assert api(sales1).post("/api/v1/partners/", {"name": "X"}, format="json").status_code == 403
    nobody = UserFactory()
    assert api(nobody).get("/api/v1/partners/").json()["count"] == 0


def test_pricing_rates_are_validated(api, sales1, merchant):
    plan = {
        "name": "Bad",
        "currency": "HKD",
        "rates": [{"method": "fps", "percent": "101", "fixed_fee": "0"}],
    }
    response = api(sales1).post(_url(merchant, "pricing"), plan, format="json")
    assert response.status_code == 400
    assert not merchant.pricing_plans.exists()
