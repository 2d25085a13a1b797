import pytest

from merchants.models import Merchant
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

VALID = {
    "legal_name": "Lotus Travel Pte. Ltd.",
    "trading_name": "Lotus Travel",
    "registration_number": "202412345K",
    "country": "SG",
    "business_type": "private_company",
    "mcc": "4722",
    "website": "https://lotus-travel.example",
    "expected_monthly_volume": "120000.00",
    "volume_currency": "SGD",
    "tags": ["online"],
}


def test_create_returns_the_merchant_owned_by_the_caller(api, sales1):
    response = api(sales1).post("/api/v1/merchants/", VALID, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["owner"] == "sales1"
    assert body["country"] == "SG"
    assert body["status"] == "lead"
    assert body["expected_monthly_volume"] == "120000.0000"
    assert body["mid"] is None


def test_bad_input_answers_400_naming_each_field_and_saves_nothing(api, sales1):
    data = {**VALID, "mcc": "99", "country": "ZZ", "volume_currency": "XYZ", "legal_name": ""}
    response = api(sales1).post("/api/v1/merchants/", data, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert {"mcc", "country", "volume_currency", "legal_name"} <= errors.keys()
    assert not Merchant.objects.exists()


def test_unknown_mcc_is_refused_by_the_iso_list(api, sales1):
    response = api(sales1).post("/api/v1/merchants/", {**VALID, "mcc": "0001"}, format="json")
    assert response.status_code == 400
    assert "ISO 18245" in response.json()["mcc"][0]


@pytest.mark.parametrize("mcc", ["abcd", "12a4", "٤٧٢٢"])
def test_an_mcc_that_is_not_four_digits_answers_400_on_mcc(api, sales1, mcc):
    """Issue 12 finding 7: "abcd" reached the ISO lookup, which raised (500)."""
    client = api(sales1)
    client.raise_request_exception = False
    response = client.post("/api/v1/merchants/", {**VALID, "mcc": mcc}, format="json")
    assert response.status_code == 400
    assert response.json()["mcc"] == ["Enter the 4-digit MCC."]
    merchant = MerchantFactory(owner=sales1)
    response = client.patch(f"/api/v1/merchants/{merchant.pk}/", {"mcc": mcc}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["mcc"]


def test_duplicate_registration_answers_400_and_keeps_the_first(api, sales1):
    MerchantFactory(registration_number=VALID["registration_number"], country="SG")
    response = api(sales1).post("/api/v1/merchants/", VALID, format="json")
    assert response.status_code == 400
    assert "already exists" in str(response.json())
    assert Merchant.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"), [("status", "offboarded"), ("risk_level", "high"), ("mid", "MHK1")]
)
def test_patch_refuses_status_risk_level_and_mid_by_name(api, sales1, field, value):
    """Issue 12 finding 2: a sales owner offboarded through PATCH."""
    merchant = MerchantFactory(owner=sales1)
    response = api(sales1).patch(
        f"/api/v1/merchants/{merchant.pk}/", {field: value, "trading_name": "X"}, format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]
    merchant.refresh_from_db()
    assert (merchant.status, merchant.risk_level, merchant.mid, merchant.trading_name) == (
        "lead", "low", None, merchant.trading_name,
    )  # fmt: skip
    assert merchant.history.count() == 1


def test_update_changes_only_what_was_sent(api, sales1):
    merchant = MerchantFactory(owner=sales1)
    response = api(sales1).patch(
        f"/api/v1/merchants/{merchant.pk}/", {"trading_name": "Lotus"}, format="json"
    )
    assert response.status_code == 200
    merchant.refresh_from_db()
    assert merchant.trading_name == "Lotus"
    assert merchant.history.count() == 2


def test_status_and_risk_level_have_their_own_actions_for_the_roles_that_may(
    api, sales1, compliance1
):
    merchant = MerchantFactory(owner=sales1, status="onboarding")
    from merchants import services

    services.merchant_activate(merchant=merchant, actor=compliance1, reason="approved")
    url = f"/api/v1/merchants/{merchant.pk}/"
    # the owner may not suspend, nor rate the risk
    assert (
        api(sales1).post(f"{url}status/", {"status": "suspended", "reason": "x"}).status_code == 403
    )
    assert (
        api(sales1).post(f"{url}risk-level/", {"risk_level": "high", "reason": "x"}).status_code
        == 403
    )
    # compliance may, with a reason
    client = api(compliance1)
    response = client.post(f"{url}status/", {"status": "suspended"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    response = client.post(f"{url}status/", {"status": "suspended", "reason": "chargebacks"})
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    response = client.post(f"{url}risk-level/", {"risk_level": "high", "reason": "chargebacks"})
    assert response.json()["risk_level"] == "high"
    # a move the lifecycle does not allow is named on status
    response = client.post(f"{url}status/", {"status": "lead", "reason": "x"})
    assert response.status_code == 400
    assert list(response.json()) == ["status"]
    merchant.refresh_from_db()
    assert (merchant.status, merchant.risk_level) == ("suspended", "high")
    assert merchant.history.first().history_change_reason == "chargebacks"


def test_roles_without_add_permission_cannot_create(api, db):
    finance = UserFactory(roles=["finance"])
    assert api(finance).post("/api/v1/merchants/", VALID, format="json").status_code == 403


def test_admin_can_assign_an_owner(api, admin1, sales2):
    response = api(admin1).post(
        "/api/v1/merchants/", {**VALID, "owner": sales2.username}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["owner"] == "sales2"


def test_list_filters(api, admin1, sales1):
    MerchantFactory(owner=sales1, legal_name="Jade Pharmacy Limited", risk_level="high")
    MerchantFactory(owner=sales1, country="SG")
    client = api(admin1)
    assert client.get("/api/v1/merchants/", {"q": "jade"}).json()["count"] == 1
    assert client.get("/api/v1/merchants/", {"country": "sg"}).json()["count"] == 1
    assert client.get("/api/v1/merchants/", {"risk_level": "high"}).json()["count"] == 1
    assert client.get("/api/v1/merchants/", {"owner": sales1.pk}).json()["count"] == 2


def test_schema_and_docs_are_served_to_verified_users(api, sales1):
    client = api(sales1)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/merchants/" in schema.content
    assert client.get("/api/docs/").status_code == 200
