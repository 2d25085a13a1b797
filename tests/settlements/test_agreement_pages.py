"""Revenue-share agreement pages: list, create with tiers, errors on their fields, end."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from settlements.models import RevenueShareAgreement, SettlementRun, Statement
from tests.factories.merchants import PartnerFactory
from tests.factories.settlements import AgreementFactory, AgreementTierFactory

pytestmark = pytest.mark.django_db


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _data(partner, tiers=(("0", "1000"),), **overrides) -> dict:
    data = {
        "partner": partner.pk,
        "basis": "fee",
        "tier_mode": "whole",
        "currency": "HKD",
        "valid_from": "2026-01-01",
        "valid_to": "",
        "rounding": "ROUND_HALF_UP",
        "minimum_payout": "0",
        "notes": "",
        "tiers-TOTAL_FORMS": str(len(tiers)),
        "tiers-INITIAL_FORMS": "0",
        "tiers-MIN_NUM_FORMS": "1",
        "tiers-MAX_NUM_FORMS": "1000",
    }
    for n, (volume, rate) in enumerate(tiers):
        data[f"tiers-{n}-from_volume"] = volume
        data[f"tiers-{n}-rate_bps"] = rate
    data.update(overrides)
    return data


@pytest.fixture
def tree(db):
    master = PartnerFactory(name="Master Agent")
    sub = PartnerFactory(name="Sub Agent", parent=master)
    leaf = PartnerFactory(name="Leaf Agent", parent=sub)
    return master, sub, leaf


# ---------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------


def test_list_shows_terms_validity_tiers_and_minimum(web, finance1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(
        partner=master, tier_mode="graduated", minimum_payout=Decimal("500"), rate_bps=3000
    )
    AgreementTierFactory(agreement=agreement, from_volume=Decimal("100000"), rate_bps=4000)
    response = web(finance1).get(reverse("settlements:agreements"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Master Agent" in html
    assert "Fees charged" in html
    assert "Graduated by bands" in html
    assert "2026-01-01 \N{EN DASH} open" in html
    assert "in force" in html
    assert "≥ 0.00: <strong>3,000</strong>" in html
    assert "≥ 100,000.00: <strong>4,000</strong>" in html
    assert "500.00 HKD" in html


def test_list_filters_by_partner(web, finance1, tree):
    master, sub, _leaf = tree
    AgreementFactory(partner=master, rate_bps=3000)
    AgreementFactory(partner=sub, rate_bps=2000)
    response = web(finance1).get(reverse("settlements:agreements"), {"partner": sub.pk})
    assert [a.partner for a in response.context["page"]] == [sub]
    html = response.content.decode()
    assert f"{reverse('settlements:agreement-create')}?partner={sub.pk}" in html


@pytest.mark.parametrize("count", [3, 30])
def test_list_runs_a_constant_number_of_queries(web, finance1, count, django_assert_num_queries):
    for _n in range(count):
        agreement = AgreementFactory(rate_bps=1000, created_by=finance1)
        AgreementTierFactory(agreement=agreement, from_volume=Decimal("5000"), rate_bps=2000)
    client = web(finance1)
    client.get(reverse("settlements:agreements"))
    # session, user, device, perms, partner choices, count, rows, tiers, nav, session save
    with django_assert_num_queries(14):
        response = client.get(reverse("settlements:agreements"))
    assert len(response.context["page"]) == min(count, 25)


def test_list_is_paginated(web, finance1):
    for _n in range(27):
        AgreementFactory(rate_bps=1000, created_by=finance1)
    client = web(finance1)
    assert client.get(reverse("settlements:agreements")).context["page"].paginator.num_pages == 2
    second = client.get(reverse("settlements:agreements"), {"page": 2})
    assert len(second.context["page"]) == 2


# ---------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------


def test_form_preselects_the_partner_and_shows_its_referral_path(web, finance1, tree):
    master, sub, leaf = tree
    AgreementFactory(partner=master, basis="net", rate_bps=3000)
    response = web(finance1).get(reverse("settlements:agreement-create"), {"partner": sub.pk})
    assert response.status_code == 200
    assert response.context["form"].initial["partner"] == sub
    context = response.context["partner_context"]
    assert [n.partner for n in context.ancestors] == [master]
    assert [n.partner for n in context.descendants] == [leaf]
    html = response.content.decode()
    assert 'data-testid="context-ancestor"' in html
    assert "Net revenue (fee - cost)" in html  # the parent's basis, which this one must share
    assert "no current agreement" in html


def test_changing_the_partner_redraws_only_the_path_panel(web, finance1, tree):
    master, _sub, _leaf = tree
    response = web(finance1).get(
        reverse("settlements:agreement-create"),
        {"partner": master.pk},
        headers={"HX-Request": "true", "HX-Target": "partner-context"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-testid="context-self"' in html
    assert html.count('data-testid="context-descendant"') == 2


def test_agreement_is_created_with_its_tiers(web, finance1, tree):
    _master, sub, _leaf = tree
    data = _data(
        sub,
        tiers=(("50000", "2500"), ("0", "2000"), ("", "")),  # a blank added row is ignored
        tier_mode="graduated",
        minimum_payout="100",
        notes="Signed 2025-12-12",
    )
    response = web(finance1).post(reverse("settlements:agreement-create"), data)
    assert response.status_code == 302, response.context and response.context["form"].errors
    agreement = RevenueShareAgreement.objects.get()
    assert response["Location"] == f"{reverse('settlements:agreements')}?partner={sub.pk}"
    assert agreement.partner == sub
    assert agreement.created_by == finance1
    assert agreement.tier_mode == "graduated"
    assert agreement.minimum_payout == Decimal("100")
    assert list(agreement.tiers.values_list("from_volume", "rate_bps")) == [
        (Decimal("0"), Decimal("2000")),
        (Decimal("50000"), Decimal("2500")),
    ]
    assert "Agreement for Sub Agent saved, in force from 2026-01-01." in _messages(response)


def test_removed_tier_rows_are_not_saved(web, finance1, tree):
    master, _sub, _leaf = tree
    data = _data(master, tiers=(("0", "1000"), ("1000", "9000")), **{"tiers-1-DELETE": "on"})
    assert web(finance1).post(reverse("settlements:agreement-create"), data).status_code == 302
    assert list(RevenueShareAgreement.objects.get().tiers.values_list("rate_bps", flat=True)) == [
        Decimal("1000")
    ]


def test_overlap_with_the_partners_own_agreement_is_shown_on_valid_from(web, finance1, tree):
    master, _sub, _leaf = tree
    AgreementFactory(partner=master, valid_from=date(2025, 1, 1), rate_bps=1000)
    response = web(finance1).post(reverse("settlements:agreement-create"), _data(master))
    assert response.status_code == 400
    errors = response.context["form"].errors["valid_from"]
    assert "already has an agreement in force during these dates (from 2025-01-01)" in errors[0]
    assert 'data-field="valid_from"' in response.content.decode()
    assert RevenueShareAgreement.objects.count() == 1


def test_another_basis_on_the_same_path_is_shown_on_basis(web, finance1, tree):
    master, sub, _leaf = tree
    AgreementFactory(partner=master, basis="net", rate_bps=1000)
    response = web(finance1).post(reverse("settlements:agreement-create"), _data(sub, basis="fee"))
    assert response.status_code == 400
    errors = response.context["form"].errors["basis"]
    assert "Master Agent, on the same referral path, is paid on Net revenue" in errors[0]
    # the page keeps showing the path that explains the rule
    assert [n.partner for n in response.context["partner_context"].ancestors] == [master]


def test_another_currency_on_the_same_path_is_shown_on_currency(web, finance1, tree):
    _master, sub, leaf = tree
    AgreementFactory(partner=leaf, currency="USD", rate_bps=1000)
    response = web(finance1).post(
        reverse("settlements:agreement-create"), _data(sub, currency="HKD")
    )
    assert response.status_code == 400
    assert "settles in USD" in response.context["form"].errors["currency"][0]


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ((("100", "1000"),), "The first tier must start at a volume of 0."),
        ((("0", "1000"), ("0", "2000")), "Two tiers start at the same volume."),
    ],
)
def test_tier_rule_errors_are_shown_above_the_tier_rows(web, finance1, tree, tiers, message):
    master, _sub, _leaf = tree
    response = web(finance1).post(
        reverse("settlements:agreement-create"), _data(master, tiers=tiers)
    )
    assert response.status_code == 400
    assert response.context["tiers"].non_form_errors() == [message]
    assert 'data-testid="tier-errors"' in response.content.decode()
    assert not RevenueShareAgreement.objects.exists()


def test_a_rate_out_of_range_is_shown_on_its_tier_field(web, finance1, tree):
    master, _sub, _leaf = tree
    response = web(finance1).post(
        reverse("settlements:agreement-create"), _data(master, tiers=(("0", "12000"),))
    )
    assert response.status_code == 400
    assert "less than or equal to 10000" in response.context["tiers"].forms[0].errors["rate_bps"][0]


def test_all_tiers_removed_asks_for_one(web, finance1, tree):
    master, _sub, _leaf = tree
    data = _data(master, **{"tiers-0-DELETE": "on"})
    response = web(finance1).post(reverse("settlements:agreement-create"), data)
    assert response.status_code == 400
    assert response.context["tiers"].non_form_errors()
    assert not RevenueShareAgreement.objects.exists()


def test_end_before_start_is_shown_on_valid_to(web, finance1, tree):
    master, _sub, _leaf = tree
    response = web(finance1).post(
        reverse("settlements:agreement-create"), _data(master, valid_to="2025-12-31")
    )
    assert response.status_code == 400
    assert response.context["form"].errors["valid_to"] == [
        "The end date must not be before the start date."
    ]


# ---------------------------------------------------------------------------
# End
# ---------------------------------------------------------------------------


def test_agreement_end_sets_the_last_day(web, finance1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(partner=master, rate_bps=1000)
    response = web(finance1).post(
        reverse("settlements:agreement-end", args=[agreement.pk]), {"valid_to": "2026-12-31"}
    )
    assert response.status_code == 302
    agreement.refresh_from_db()
    assert agreement.valid_to == date(2026, 12, 31)
    assert "The agreement of Master Agent now ends on 2026-12-31." in _messages(response)


def test_agreement_end_before_a_run_that_used_it_is_refused_with_a_message(web, finance1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(partner=master, rate_bps=1000)
    run = SettlementRun.objects.create(
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        currency="HKD",
        prepared_by=finance1,
    )
    Statement.objects.create(run=run, partner=master, agreement=agreement, currency="HKD")
    response = web(finance1).post(
        reverse("settlements:agreement-end", args=[agreement.pk]), {"valid_to": "2026-09-30"}
    )
    assert response.status_code == 302
    assert any("already used the agreement" in m for m in _messages(response))
    agreement.refresh_from_db()
    assert agreement.valid_to is None


def test_agreement_end_without_a_date_is_refused_with_a_message(web, finance1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(partner=master, rate_bps=1000)
    response = web(finance1).post(
        reverse("settlements:agreement-end", args=[agreement.pk]), {"valid_to": "soon"}
    )
    assert "Enter the last day as a date." in _messages(response)
    agreement.refresh_from_db()
    assert agreement.valid_to is None


# ---------------------------------------------------------------------------
# Doors
# ---------------------------------------------------------------------------


def test_compliance_reads_agreements_but_cannot_create_or_end_them(web, compliance1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(partner=master, rate_bps=1000)
    client = web(compliance1)
    page = client.get(reverse("settlements:agreements"))
    assert page.status_code == 200
    assert 'data-testid="new-agreement"' not in page.content.decode()
    assert f'data-testid="end-agreement-{agreement.pk}"' not in page.content.decode()
    assert client.get(reverse("settlements:agreement-create")).status_code == 403
    assert client.post(reverse("settlements:agreement-create"), _data(master)).status_code == 403
    response = client.post(
        reverse("settlements:agreement-end", args=[agreement.pk]), {"valid_to": "2026-12-31"}
    )
    assert response.status_code == 403
    agreement.refresh_from_db()
    assert agreement.valid_to is None
    assert RevenueShareAgreement.objects.count() == 1


def test_sales_user_gets_404_on_agreement_pages(web, sales1, tree):
    master, _sub, _leaf = tree
    agreement = AgreementFactory(partner=master, rate_bps=1000)
    client = web(sales1)
    assert client.get(reverse("settlements:agreements")).status_code == 404
    assert client.get(reverse("settlements:agreement-create")).status_code == 404
    end = reverse("settlements:agreement-end", args=[agreement.pk])
    assert client.post(end, {"valid_to": "2026-12-31"}).status_code == 404
