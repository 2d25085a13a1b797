from decimal import Decimal

import pytest
from django.urls import reverse

from merchants import services
from merchants.models import Merchant
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

VALID = {
    "legal_name": "Harbour Noodle House Limited",
    "trading_name": "Harbour Noodle House",
    "registration_number": "31234567",
    "country": "HK",
    "business_type": "private_company",
    "mcc": "5812",
    "website": "https://harbour-noodles.example",
    "expected_monthly_volume": "350000.00",
    "volume_currency": "HKD",
    "status": "lead",
    "risk_level": "low",
    "partner": "",
    "tags": "Retail, POS, retail",
}


def test_sales_user_creates_a_merchant_and_owns_it(web, sales1):
    response = web(sales1).post(reverse("merchants:create"), VALID)
    merchant = Merchant.objects.get(registration_number="31234567")
    assert response.status_code == 302
    assert response["Location"] == merchant.get_absolute_url()
    assert merchant.owner == sales1
    assert merchant.tags == ["retail", "pos"]
    assert merchant.expected_monthly_volume == Decimal("350000.00")
    detail = web(sales1).get(merchant.get_absolute_url())
    assert "Harbour Noodle House Limited" in detail.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("legal_name", "", "This field is required."),
        ("mcc", "12", "Enter the 4-digit MCC."),
        ("mcc", "abcd", "Enter the 4-digit MCC."),  # issue 12 finding 7: was a 500
        ("mcc", "0001", "is not a merchant category code in ISO 18245"),
        ("country", "XX", "is not one of the available choices"),
        ("expected_monthly_volume", "-5", "greater than or equal to 0"),
        ("volume_currency", "ABC", "is not one of the available choices"),
        ("website", "not a url", "Enter a valid URL."),
        ("status", "active", "is not one of the available choices"),
    ],
)
def test_bad_input_gets_a_message_on_its_field_and_saves_nothing(
    web, sales1, field, value, message
):
    data = {**VALID, field: value}
    response = web(sales1).post(reverse("merchants:create"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert any(message in error for error in form.errors[field])
    assert not Merchant.objects.exists()


def test_duplicate_registration_in_the_same_country_is_refused(web, sales1):
    MerchantFactory(registration_number="31234567", country="HK")
    response = web(sales1).post(reverse("merchants:create"), VALID)
    assert response.status_code == 400
    assert "already exists in this country" in response.content.decode()
    assert Merchant.objects.count() == 1


def test_the_edit_form_never_writes_status_risk_level_or_mid(web, sales1, compliance1):
    """Issue 12 finding 2: a sales owner set a suspended merchant back to
    active with POST /merchants/3/edit/ and status=active."""
    merchant = MerchantFactory(owner=sales1, status="onboarding")
    services.merchant_activate(merchant=merchant, actor=compliance1, reason="approved")
    services.merchant_change_status(
        merchant=merchant, actor=compliance1, status="suspended", reason="chargebacks"
    )
    data = {**VALID, "status": "active", "risk_level": "low", "mid": "MHK99"}
    response = web(sales1).post(reverse("merchants:edit", args=[merchant.pk]), data)
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.status, merchant.mid) == ("suspended", f"MHK{merchant.pk:08d}")
    assert merchant.legal_name == VALID["legal_name"]  # what the form may change, it did
    # and the owner is offered no status move on a live merchant, nor may make one
    page = web(sales1).get(merchant.get_absolute_url())
    assert b'data-testid="status-change"' not in page.content
    refused = web(sales1).post(
        reverse("merchants:status", args=[merchant.pk]), {"status": "active", "reason": "x"}
    )
    assert refused.status_code == 403
    merchant.refresh_from_db()
    assert merchant.status == "suspended"


def test_compliance_reinstates_with_a_reason_on_the_merchant_page(web, sales1, compliance1):
    merchant = MerchantFactory(owner=sales1, status="onboarding")
    services.merchant_activate(merchant=merchant, actor=compliance1, reason="approved")
    services.merchant_change_status(
        merchant=merchant, actor=compliance1, status="suspended", reason="chargebacks"
    )
    client = web(compliance1)
    page = client.get(merchant.get_absolute_url())
    assert b'data-testid="status-change"' in page.content
    url = reverse("merchants:status", args=[merchant.pk])
    no_reason = client.post(url, {"status": "active", "reason": ""})
    assert no_reason.status_code == 400
    assert "reason" in no_reason.context["status_form"].errors
    assert client.post(url, {"status": "active", "reason": "cleared"}).status_code == 302
    merchant.refresh_from_db()
    assert merchant.status == "active"


def test_a_prospect_is_moved_by_its_owner(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    url = reverse("merchants:status", args=[merchant.pk])
    assert web(sales1).post(url, {"status": "offboarded"}).status_code == 302
    merchant.refresh_from_db()
    assert merchant.status == "offboarded"
    again = web(sales1).post(url, {"status": "lead"})
    assert again.status_code == 400
    assert "status" in again.context["status_form"].errors


def test_list_filters_by_status_country_risk_owner_and_search(web, admin1, sales1, sales2):
    a = MerchantFactory(owner=sales1, legal_name="Jade Pharmacy Limited", risk_level="high")
    b = MerchantFactory(owner=sales2, legal_name="Lotus Travel Pte. Ltd.", country="SG")
    client = web(admin1)

    def names(**params):
        page = client.get(reverse("merchants:list"), params)
        return {m.pk for m in page.context["page"]}

    assert names(q="jade") == {a.pk}
    assert names(q=b.registration_number) == {b.pk}
    assert names(country="SG") == {b.pk}
    assert names(risk_level="high") == {a.pk}
    assert names(owner=sales2.pk) == {b.pk}
    assert names(status="lead") == {a.pk, b.pk}
    assert names(status="active") == set()


def test_list_is_paginated(web, admin1, sales1):
    MerchantFactory.create_batch(30, owner=sales1)
    first = web(admin1).get(reverse("merchants:list"))
    assert len(first.context["page"].object_list) == 25
    second = web(admin1).get(reverse("merchants:list"), {"page": 2})
    assert len(second.context["page"].object_list) == 5


def test_htmx_filter_returns_only_the_rows_partial(web, admin1, sales1):
    MerchantFactory(owner=sales1, legal_name="Jade Pharmacy Limited")
    response = web(admin1).get(
        reverse("merchants:list"),
        {"q": "jade"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="merchant-results",
    )
    body = response.content.decode()
    assert "Jade Pharmacy Limited" in body
    assert "<html" not in body


@pytest.mark.parametrize("count", [5, 30])
def test_list_page_runs_a_constant_number_of_queries(web, sales1, count, django_assert_num_queries):
    MerchantFactory.create_batch(count, owner=sales1)
    client = web(sales1)
    client.get(reverse("merchants:list"))  # warm the session and permission caches
    # session, user, device, user and group perms, count, rows, owner filter
    # choices, nav groups, session save… the same at any number of rows
    with django_assert_num_queries(13):
        response = client.get(reverse("merchants:list"))
    assert response.status_code == 200


@pytest.mark.parametrize("count", [5, 30])
def test_api_list_runs_a_constant_number_of_queries(api, sales1, count, django_assert_num_queries):
    MerchantFactory.create_batch(count, owner=sales1)
    client = api(sales1)
    with django_assert_num_queries(10):
        response = client.get("/api/v1/merchants/")
    assert response.json()["count"] == count


@pytest.mark.parametrize("children", [5, 50])
def test_list_page_queries_do_not_grow_with_related_records(
    web, sales1, children, django_assert_num_queries
):
    from merchants import services

    for merchant in MerchantFactory.create_batch(3, owner=sales1):
        for i in range(children):
            services.contact_create(actor=sales1, merchant=merchant, name=f"Contact {i}")
            services.activity_log(actor=sales1, merchant=merchant, kind="note", subject=f"N{i}")
    client = web(sales1)
    client.get(reverse("merchants:list"))
    with django_assert_num_queries(13):
        assert client.get(reverse("merchants:list")).status_code == 200
