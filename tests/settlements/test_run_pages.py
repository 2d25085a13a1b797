"""Settlement run pages: list, create, the run's actions and refusals, statements, doors."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from settlements.models import Adjustment, SettlementRun, Statement, StatementLine
from settlements.services import runs
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory, PartnerFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = pytest.mark.django_db

Status = SettlementRun.Status


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _text(response) -> str:
    return response.content.decode()


def _run(finance1, **kwargs) -> SettlementRun:
    return runs.settlement_run_create(
        actor=finance1,
        period_start=kwargs.pop("period_start", OCT_START),
        period_end=kwargs.pop("period_end", OCT_END),
        currency=kwargs.pop("currency", "HKD"),
    )


def _calculated(finance1, capture):
    world = build_world(actor=finance1)
    run = _run(finance1)
    with capture(execute=True):
        runs.settlement_run_calculate(actor=finance1, run=run)
    run.refresh_from_db()
    assert run.status == Status.CALCULATED, run.calculation_error
    return world, run


def _submitted(finance1, capture):
    world, run = _calculated(finance1, capture)
    run = runs.settlement_run_submit(actor=finance1, run=run)
    return world, run


# ---------------------------------------------------------------------------
# List and create
# ---------------------------------------------------------------------------


def test_run_list_shows_period_status_totals_preparer_and_approvals(
    web, finance1, django_capture_on_commit_callbacks
):
    # given
    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    # when
    response = web(finance1).get(reverse("settlements:runs"))
    # then
    assert response.status_code == 200
    html = _text(response)
    assert "2026-10-01 \N{EN DASH} 2026-10-31" in html
    assert run.get_absolute_url() in html
    assert "Submitted for approval" in html
    assert "1,220.00 HKD" in html  # payable
    assert str(finance1) in html
    assert "0 / 1" in html


def test_run_list_filters_by_status_and_currency(web, finance1):
    draft = _run(finance1)
    usd = _run(finance1, currency="USD")
    client = web(finance1)

    by_currency = _text(client.get(reverse("settlements:runs"), {"currency": "USD"}))
    assert usd.get_absolute_url() in by_currency
    assert draft.get_absolute_url() not in by_currency

    SettlementRun.objects.filter(pk=draft.pk).update(status=Status.CALCULATED)
    by_status = _text(client.get(reverse("settlements:runs"), {"status": "calculated"}))
    assert draft.get_absolute_url() in by_status
    assert usd.get_absolute_url() not in by_status


def test_run_list_filter_answers_htmx_with_the_rows_only(web, finance1):
    _run(finance1)
    response = web(finance1).get(
        reverse("settlements:runs"),
        {"status": "draft"},
        headers={"HX-Request": "true", "HX-Target": "run-results"},
    )
    assert response.status_code == 200
    assert next(t.name for t in response.templates) == "settlements/partials/run_rows.html"
    assert "<html" not in _text(response)


def _many_runs(finance1, count: int) -> None:
    # One month each, going back from September 2026: runs of a currency may not overlap.
    from settlements.forms_runs import last_calendar_month

    day = date(2026, 10, 1)
    for _n in range(count):
        start, end = last_calendar_month(day)
        SettlementRun.objects.create(
            period_start=start, period_end=end, currency="HKD", prepared_by=finance1
        )
        day = start


def test_run_list_is_paginated(web, finance1):
    _many_runs(finance1, 27)
    client = web(finance1)
    first = client.get(reverse("settlements:runs"))
    assert first.context["page"].paginator.num_pages == 2
    assert len(first.context["page"].object_list) == 25
    second = client.get(reverse("settlements:runs"), {"page": 2})
    assert len(second.context["page"].object_list) == 2
    assert 'data-testid="pager"' in _text(first)


@pytest.mark.parametrize("count", [3, 30])
def test_run_list_runs_a_constant_number_of_queries(
    web, finance1, finance2, count, django_assert_num_queries
):
    _many_runs(finance1, count)
    client = web(finance2)
    client.get(reverse("settlements:runs"))  # warm the session and permission caches
    # session, user, device, perms, currencies, count, rows with preparer and
    # approvals, nav, session save: the same at any number of runs
    with django_assert_num_queries(13):
        response = client.get(reverse("settlements:runs"))
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == min(count, 25)


def test_new_run_form_defaults_to_last_calendar_month_and_the_default_currency(
    web, finance1, settings
):
    settings.DEFAULT_CURRENCY = "HKD"
    from settlements.forms_runs import last_calendar_month

    form = web(finance1).get(reverse("settlements:runs")).context["create_form"]

    start, end = last_calendar_month()
    assert form.initial["period_start"] == start
    assert form.initial["period_end"] == end
    assert start.day == 1
    assert (end + date.resolution).day == 1
    assert form.initial["currency"] == "HKD"


def test_last_calendar_month_crosses_the_year():
    from settlements.forms_runs import last_calendar_month

    assert last_calendar_month(date(2027, 1, 15)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert last_calendar_month(date(2026, 3, 1)) == (date(2026, 2, 1), date(2026, 2, 28))


def test_new_run_is_created_through_the_page_and_opens(web, finance1):
    response = web(finance1).post(
        reverse("settlements:run-create"),
        {"period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "HKD"},
    )
    run = SettlementRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert run.prepared_by == finance1
    assert run.status == Status.DRAFT


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"period_start": "2026-10-15", "period_end": "2026-10-31", "currency": "HKD"},
            "period_start",
            "already covers part of this period",
        ),
        (
            {"period_start": "2026-11-01", "period_end": "2099-11-30", "currency": "USD"},
            "period_end",
            "must have ended",
        ),
        (
            {"period_start": "2026-10-31", "period_end": "2026-10-01", "currency": "USD"},
            "period_end",
            "end on or after its start",
        ),
        (
            {"period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "ABC"},
            "currency",
            "not one of the available choices",
        ),
    ],
)
def test_run_create_errors_land_on_their_fields(web, finance1, data, field, message):
    # given: an HKD run for October already exists
    _run(finance1)
    # when
    response = web(finance1).post(reverse("settlements:run-create"), data)
    # then
    assert response.status_code == 400
    form = response.context["create_form"]
    assert any(message in e for e in form.errors[field]), form.errors
    assert message in _text(response)
    assert SettlementRun.objects.count() == 1


# ---------------------------------------------------------------------------
# The run: actions through the page
# ---------------------------------------------------------------------------


def test_run_goes_from_draft_to_approved_through_the_pages(
    web, finance1, finance2, django_capture_on_commit_callbacks
):
    # given
    build_world(actor=finance1)
    preparer, approver = web(finance1), web(finance2)
    preparer.post(
        reverse("settlements:run-create"),
        {"period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "HKD"},
    )
    run = SettlementRun.objects.get()
    draft = _text(preparer.get(run.get_absolute_url()))
    assert 'data-testid="calculate"' in draft
    assert 'data-testid="submit"' not in draft

    # when: calculate (the task runs once the service's transaction commits,
    # which in this test is when the capture block ends)
    with django_capture_on_commit_callbacks(execute=True):
        response = preparer.post(reverse("settlements:run-calculate", args=[run.pk]))
    # then
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    page = preparer.get(run.get_absolute_url())
    html = _text(page)
    assert ">Calculated<" in html
    assert 'data-testid="submit"' in html
    assert 'data-testid="recalculate"' in html
    assert "3,050.00 HKD" in html  # total basis
    assert "1,830.00 HKD" in html  # platform retained
    assert "Shares + retained = 3,050.00 HKD = basis" in html
    assert "Master Agent" in html
    assert "Sub Agent" in html

    # when: submit
    response = preparer.post(reverse("settlements:run-submit", args=[run.pk]))
    assert "Submitted for approval." in _messages(response)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED

    # then the approver sees Approve and Reject, and approves with a comment
    html = _text(approver.get(run.get_absolute_url()))
    assert 'data-testid="approve"' in html
    assert 'data-testid="reject"' in html
    response = approver.post(
        reverse("settlements:run-approve", args=[run.pk]), {"comment": "ties to the ledger"}
    )
    assert "Approved. The run is frozen and can be exported." in _messages(response)
    run.refresh_from_db()
    assert run.status == Status.APPROVED
    assert run.approvals.get().comment == "ties to the ledger"
    html = _text(approver.get(run.get_absolute_url()))
    assert "1 of 1 given" in html
    assert str(finance2) in html
    assert 'data-testid="run-export"' in html  # the exports partial offers the export


def test_preparer_sees_no_approve_button_and_is_told_why(
    web, finance1, django_capture_on_commit_callbacks
):
    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    html = _text(web(finance1).get(run.get_absolute_url()))
    assert 'data-testid="approve"' not in html
    assert 'data-testid="approve-blocked"' in html
    assert "You prepared this run, so you cannot approve it" in html


def test_preparer_posting_approve_gets_the_refusal_as_a_message(
    web, finance1, django_capture_on_commit_callbacks
):
    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    response = web(finance1).post(reverse("settlements:run-approve", args=[run.pk]))
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert "Whoever prepared a run cannot approve it." in _messages(response)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    assert not run.approvals.exists()


def test_approving_a_draft_is_refused_with_a_message_not_an_error_page(web, finance1, finance2):
    run = _run(finance1)
    response = web(finance2).post(reverse("settlements:run-approve", args=[run.pk]), follow=True)
    assert response.status_code == 200
    assert "Only a submitted run can be approved; it is Draft." in _text(response)
    run.refresh_from_db()
    assert run.status == Status.DRAFT


def test_submitting_a_draft_is_refused_with_a_message(web, finance1):
    run = _run(finance1)
    response = web(finance1).post(reverse("settlements:run-submit", args=[run.pk]))
    assert "Only a calculated run can be submitted; it is Draft." in _messages(response)


def test_adjuster_and_first_approver_are_told_why_they_cannot_approve(
    web, finance1, finance2, finance3, settings, django_capture_on_commit_callbacks
):
    # given: a run above the dual-approval threshold, adjusted by finance2
    settings.SETTLEMENT_DUAL_APPROVAL_ABOVE = {"*": "100"}
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance2, run=run, partner=world.sub, amount=Decimal("5.00"), reason="fee rebate"
    )
    runs.settlement_run_submit(actor=finance1, run=run)
    # then
    html = _text(web(finance2).get(run.get_absolute_url()))
    assert "You made an adjustment on this run" in html
    assert 'data-testid="approve"' not in html
    # when finance3 gives the first of two approvals
    response = web(finance3).post(reverse("settlements:run-approve", args=[run.pk]))
    assert "a second approver must also sign off" in _messages(response)[0]
    html = _text(web(finance3).get(run.get_absolute_url()))
    assert "1 of 2 given" in html
    assert "You have approved this submission" in html
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED


def test_reject_needs_a_reason_shown_on_its_field(
    web, finance1, finance2, django_capture_on_commit_callbacks
):
    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    response = web(finance2).post(reverse("settlements:run-reject", args=[run.pk]), {"reason": " "})
    assert response.status_code == 400
    assert response.context["reject_form"].errors["reason"] == ["Say why the run is rejected."]
    assert 'data-testid="reject-errors"' in _text(response)
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED


def test_rejected_run_returns_to_draft_showing_the_reason_and_the_history(
    web, finance1, finance2, django_capture_on_commit_callbacks
):
    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    response = web(finance2).post(
        reverse("settlements:run-reject", args=[run.pk]), {"reason": "Sub Agent rate is wrong"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Status.DRAFT
    page = web(finance1).get(run.get_absolute_url())
    html = _text(page)
    assert 'data-testid="rejection-reason"' in html
    assert 'data-testid="run-approvals"' not in html  # the rejected round's count is over
    assert "Sub Agent rate is wrong" in html
    moves = [(h["status"], h["reason"]) for h in page.context["history"]]
    assert moves == [
        ("draft", "run created"),
        ("calculating", "calculation requested"),
        ("calculated", "calculated"),
        ("submitted", "submitted for approval"),
        ("rejected", "Sub Agent rate is wrong"),
        ("draft", "returned to draft after rejection"),
    ]
    assert {h["who"] for h in page.context["history"][-2:]} == {str(finance2)}


def test_history_is_read_in_one_query(finance1, django_capture_on_commit_callbacks):
    from settlements.views.runs import _status_changes

    _world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        changes = _status_changes(run)
    assert len(queries) == 1
    assert [c["status"] for c in changes] == ["draft", "calculating", "calculated", "submitted"]


def test_calculation_error_is_shown_in_an_alert(web, finance1, django_capture_on_commit_callbacks):
    from settlements.models import FxRate

    build_world(actor=finance1)
    FxRate.objects.all().delete()
    run = _run(finance1)
    with django_capture_on_commit_callbacks(execute=True):
        web(finance1).post(reverse("settlements:run-calculate", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Status.DRAFT
    html = _text(web(finance1).get(run.get_absolute_url()))
    assert 'data-testid="calculation-error"' in html
    assert "USD to HKD on 2026-10-15" in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fx_rates", [True, False])
def test_calculate_reports_the_outcome_when_the_task_ran_within_the_request(web, fx_rates):
    # given: real commits, so the eager task runs before the view reads the run back
    from settlements.models import FxRate

    restore_roles()
    preparer = UserFactory(username="finance1", roles=["finance"])
    build_world(actor=preparer)
    if not fx_rates:
        FxRate.objects.all().delete()
    run = _run(preparer)
    # when
    response = web(preparer).post(reverse("settlements:run-calculate", args=[run.pk]))
    # then
    run.refresh_from_db()
    if fx_rates:
        assert run.status == Status.CALCULATED
        assert _messages(response) == ["The run is calculated."]
    else:
        assert run.status == Status.DRAFT
        assert _messages(response) == [
            "The calculation stopped: No FX rate for USD to HKD on 2026-10-15."
        ]


def test_calculate_without_an_immediate_result_says_it_started(web, finance1):
    # The task waits for the commit, which this test never runs: as with a broker.
    run = _run(finance1)
    response = web(finance1).post(reverse("settlements:run-calculate", args=[run.pk]))
    assert "Calculation started; this page follows its progress." in _messages(response)
    run.refresh_from_db()
    assert run.status == Status.CALCULATING


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------


def test_page_polls_the_progress_partial_while_calculating(web, finance1):
    run = _run(finance1)
    SettlementRun.objects.filter(pk=run.pk).update(
        status=Status.CALCULATING, progress=60, progress_note="Calculating shares"
    )
    client = web(finance1)
    html = _text(client.get(run.get_absolute_url()))
    progress_url = reverse("settlements:run-progress", args=[run.pk])
    assert f'hx-get="{progress_url}"' in html
    assert 'hx-trigger="every 1s"' in html
    assert "Adjustments can be added again when the calculation ends." in html
    assert 'data-testid="calculate"' not in html

    partial = client.get(progress_url, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "HX-Refresh" not in partial.headers
    body = _text(partial)
    assert 'aria-valuenow="60"' in body
    assert "width: 60%" in body
    assert "Calculating shares" in body
    assert 'hx-trigger="every 1s"' in body


def test_progress_partial_tells_the_page_to_reload_once_the_run_is_no_longer_calculating(
    web, finance1
):
    run = _run(finance1)
    SettlementRun.objects.filter(pk=run.pk).update(status=Status.CALCULATED, progress=100)
    partial = web(finance1).get(
        reverse("settlements:run-progress", args=[run.pk]), headers={"HX-Request": "true"}
    )
    assert partial["HX-Refresh"] == "true"
    body = _text(partial)
    assert "hx-trigger" not in body  # polling stops
    assert "the run is now Calculated" in body
    assert run.get_absolute_url() in body


# ---------------------------------------------------------------------------
# Adjustments
# ---------------------------------------------------------------------------


def test_adjustment_is_added_and_removed_through_the_page(
    web, finance1, django_capture_on_commit_callbacks
):
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    client = web(finance1)
    form = client.get(run.get_absolute_url()).context["adjustment_form"]
    groups = [label for label, _options in form.fields["partner"].choices if label]
    assert groups == ["On this run's statements"]  # every partner here has a statement

    response = client.post(
        reverse("settlements:adjustment-create", args=[run.pk]),
        {"partner": world.sub.pk, "amount": "-20.00", "reason": "Chargeback fee recovery"},
    )
    assert response.status_code == 302
    assert "Adjustment for Sub Agent recorded." in _messages(response)
    run.refresh_from_db()
    assert run.total_adjustments == Decimal("-20.00")
    assert run.total_payable == Decimal("1200.00")
    html = _text(client.get(run.get_absolute_url()))
    assert "Chargeback fee recovery" in html
    assert "-20.00 HKD" in html

    adjustment = Adjustment.objects.get()
    response = client.post(reverse("settlements:adjustment-delete", args=[run.pk, adjustment.pk]))
    assert "Adjustment for Sub Agent removed." in _messages(response)
    run.refresh_from_db()
    assert run.total_payable == Decimal("1220.00")
    assert not Adjustment.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "0", "reason": "x"}, "amount", "Enter an amount other than zero."),
        ({"amount": "1.005", "reason": "x"}, "amount", "at most 2 decimal places"),
        ({"amount": "10", "reason": ""}, "reason", "This field is required."),
        ({"amount": "ten", "reason": "x"}, "amount", "Enter a number."),
    ],
)
def test_adjustment_errors_land_on_their_fields(
    web, finance1, data, field, message, django_capture_on_commit_callbacks
):
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    response = web(finance1).post(
        reverse("settlements:adjustment-create", args=[run.pk]), {"partner": world.sub.pk, **data}
    )
    assert response.status_code == 400
    errors = response.context["adjustment_form"].errors
    assert any(message in e for e in errors[field]), errors
    assert not Adjustment.objects.exists()


def test_adjustment_for_a_partner_without_a_statement_can_be_chosen(
    web, finance1, django_capture_on_commit_callbacks
):
    _world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    other = PartnerFactory(name="Zed Referrals")
    form = web(finance1).get(run.get_absolute_url()).context["adjustment_form"]
    other_group = dict(form.fields["partner"].choices)["Other partners"]
    assert (other.pk, "Zed Referrals") in other_group


def test_adjustments_are_refused_after_submission_with_a_message(
    web, finance1, django_capture_on_commit_callbacks
):
    world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    client = web(finance1)
    html = _text(client.get(run.get_absolute_url()))
    assert 'data-testid="adjustment-form"' not in html
    assert "Adjustments are fixed once the run is submitted." in html
    response = client.post(
        reverse("settlements:adjustment-create", args=[run.pk]),
        {"partner": world.sub.pk, "amount": "5", "reason": "late"},
    )
    assert response.status_code == 302
    assert any("only before the run is submitted" in m for m in _messages(response))
    assert not Adjustment.objects.exists()


def test_adjustment_of_another_run_is_not_found(web, finance1, django_capture_on_commit_callbacks):
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    other = _run(finance1, currency="USD")
    adjustment = runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("1"), reason="x"
    )
    response = web(finance1).post(
        reverse("settlements:adjustment-delete", args=[other.pk, adjustment.pk])
    )
    assert response.status_code == 404
    assert Adjustment.objects.filter(pk=adjustment.pk).exists()


# ---------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------


def test_statement_detail_shows_agreement_figures_lines_and_adjustments(
    web, finance1, django_capture_on_commit_callbacks
):
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    runs.adjustment_create(
        actor=finance1, run=run, partner=world.master, amount=Decimal("30"), reason="Q3 bonus"
    )
    statement = Statement.objects.get(run=run, partner=world.master)
    response = web(finance1).get(statement.get_absolute_url())
    assert response.status_code == 200
    html = _text(response)
    assert "Fees charged" in html
    assert "Whole volume at the tier reached" in html
    assert "133,000.00 HKD" in html  # volume
    assert "≥ 100,000.00 HKD" in html  # tier reached
    assert "4,000 bps (40.00 %)" in html
    assert reverse("merchants:detail", args=[world.m1.pk]) in html
    assert reverse("merchants:detail", args=[world.m2.pk]) in html
    assert "Spread over sub-agent" in html
    assert "Referring partner" in html
    assert "780.00" in html
    assert "220.00" in html
    assert "Q3 bonus" in html
    assert "1,030.00 HKD" in html  # payable with the adjustment
    assert 'data-testid="statement-pdf"' not in html  # no export yet


def test_statement_detail_offers_its_pdf_once_exported(
    web, finance1, django_capture_on_commit_callbacks
):
    from settlements.models import SettlementExport

    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    statement = Statement.objects.get(run=run, partner=world.sub)
    export = SettlementExport.objects.create(
        run=run,
        kind=SettlementExport.Kind.STATEMENT_PDF,
        statement=statement,
        filename="statement.pdf",
        content_type="application/pdf",
        content=b"%PDF-1.4",
        sha256="0" * 64,
        created_by=finance1,
    )
    html = _text(web(finance1).get(statement.get_absolute_url()))
    assert 'data-testid="statement-pdf"' in html
    assert reverse("settlements:export-download", args=[run.pk, export.pk]) in html
    # the other partner's statement has no PDF of its own
    master = Statement.objects.get(run=run, partner=world.master)
    assert 'data-testid="statement-pdf"' not in _text(web(finance1).get(master.get_absolute_url()))


def test_statement_of_another_run_is_not_found(web, finance1, django_capture_on_commit_callbacks):
    _world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    other = _run(finance1, currency="USD")
    statement = run.statements.first()
    url = reverse("settlements:statement-detail", args=[other.pk, statement.pk])
    assert web(finance1).get(url).status_code == 404


def _statement_with_lines(finance1, count: int) -> Statement:
    run = _run(finance1)
    partner = PartnerFactory()
    statement = Statement.objects.create(
        run=run, partner=partner, currency="HKD", has_negative_spread=True
    )
    for n in range(count):
        StatementLine.objects.create(
            statement=statement,
            merchant=MerchantFactory(partner=partner, legal_name=f"Merchant {n:03d} Limited"),
            role=StatementLine.Role.SPREAD,
            transaction_count=1,
            volume=Decimal("100"),
            basis=Decimal("2"),
            partner_rate_bps=Decimal("1000"),
            child_rate_bps=Decimal("2000"),
            rate_bps=Decimal("0"),
            share=Decimal("0"),
            negative_spread=True,
        )
    return statement


@pytest.mark.parametrize("count", [3, 30])
def test_statement_detail_runs_a_constant_number_of_queries(
    web, finance1, count, django_assert_num_queries
):
    statement = _statement_with_lines(finance1, count)
    client = web(finance1)
    client.get(statement.get_absolute_url())
    # session, user, device, perms, run, statement, count, lines with merchants,
    # adjustments, PDF export, nav, session save
    with django_assert_num_queries(16):
        response = client.get(statement.get_absolute_url())
    assert response.status_code == 200
    assert _text(response).count('data-testid="line-negative-spread"') == count


def test_statement_lines_are_paginated_by_one_hundred(web, finance1):
    statement = _statement_with_lines(finance1, 101)
    client = web(finance1)
    first = client.get(statement.get_absolute_url())
    assert len(first.context["lines"].object_list) == 100
    second = client.get(statement.get_absolute_url(), {"page": 2})
    assert [line.merchant.legal_name for line in second.context["lines"]] == [
        "Merchant 100 Limited"
    ]


def test_negative_spread_is_flagged_on_the_run_page(web, finance1):
    statement = _statement_with_lines(finance1, 1)
    html = _text(web(finance1).get(statement.run.get_absolute_url()))
    assert 'data-testid="negative-spread"' in html


# ---------------------------------------------------------------------------
# Doors
# ---------------------------------------------------------------------------


def _every_url(run: SettlementRun, statement: Statement, adjustment: Adjustment):
    return [
        ("get", reverse("settlements:runs")),
        ("post", reverse("settlements:run-create")),
        ("get", run.get_absolute_url()),
        ("get", reverse("settlements:run-progress", args=[run.pk])),
        ("post", reverse("settlements:run-calculate", args=[run.pk])),
        ("post", reverse("settlements:run-submit", args=[run.pk])),
        ("post", reverse("settlements:run-approve", args=[run.pk])),
        ("post", reverse("settlements:run-reject", args=[run.pk])),
        ("post", reverse("settlements:adjustment-create", args=[run.pk])),
        ("post", reverse("settlements:adjustment-delete", args=[run.pk, adjustment.pk])),
        ("get", statement.get_absolute_url()),
        ("post", reverse("settlements:run-export", args=[run.pk])),
        ("get", reverse("settlements:agreements")),
        ("get", reverse("settlements:agreement-create")),
        ("post", reverse("settlements:agreement-create")),
        ("post", reverse("settlements:agreement-end", args=[statement.agreement_id])),
        ("get", reverse("settlements:fx-rates")),
        ("post", reverse("settlements:fx-rate-set")),
        ("post", reverse("settlements:fx-rate-import")),
    ]


def test_sales_user_gets_404_on_every_settlements_url(
    web, finance1, sales1, django_capture_on_commit_callbacks
):
    world, run = _calculated(finance1, django_capture_on_commit_callbacks)
    adjustment = runs.adjustment_create(
        actor=finance1, run=run, partner=world.sub, amount=Decimal("1"), reason="x"
    )
    statement = Statement.objects.get(run=run, partner=world.sub)
    client = web(sales1)
    for method, url in _every_url(run, statement, adjustment):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    run.refresh_from_db()
    assert run.status == Status.CALCULATED
    assert Adjustment.objects.count() == 1


def test_compliance_user_sees_runs_but_gets_403_on_every_action(
    web, finance1, compliance1, django_capture_on_commit_callbacks
):
    world, run = _submitted(finance1, django_capture_on_commit_callbacks)
    client = web(compliance1)
    page = client.get(run.get_absolute_url())
    assert page.status_code == 200
    html = _text(page)
    assert 'data-testid="approve"' not in html
    assert 'data-testid="reject"' not in html
    statement = Statement.objects.get(run=run, partner=world.sub)
    assert client.get(statement.get_absolute_url()).status_code == 200

    response = client.post(reverse("settlements:run-approve", args=[run.pk]), {"comment": "ok"})
    assert response.status_code == 403
    for name in ("run-reject", "run-calculate", "run-submit", "adjustment-create"):
        assert client.post(reverse(f"settlements:{name}", args=[run.pk])).status_code == 403
    assert (
        client.post(
            reverse("settlements:run-create"),
            {"period_start": "2026-09-01", "period_end": "2026-09-30", "currency": "HKD"},
        ).status_code
        == 403
    )
    run.refresh_from_db()
    assert run.status == Status.SUBMITTED
    assert not run.approvals.exists()


def test_unknown_run_is_404(web, finance1):
    assert web(finance1).get(reverse("settlements:run-detail", args=[999])).status_code == 404


def test_settlements_appear_in_the_navigation_after_partners_for_finance_only(
    web, finance1, sales1
):
    nav = web(finance1).get(reverse("settlements:runs")).context["nav_items"]
    labels = [str(item["label"]) for item in nav]
    assert labels[labels.index("Partners") + 1] == "Settlements"
    settlements = nav[labels.index("Settlements")]
    assert settlements["icon"] == "cash-coin"
    assert settlements["url"] == reverse("settlements:runs")
    assert settlements["active"]

    sales_nav = web(sales1).get(reverse("merchants:list")).context["nav_items"]
    assert "Settlements" not in [str(item["label"]) for item in sales_nav]


def test_a_user_without_any_role_gets_404(web):
    nobody = UserFactory(username="nobody")
    assert web(nobody).get(reverse("settlements:runs")).status_code == 404


# ---------------------------------------------------------------------------
# Money on the pages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (Decimal("1234.5"), "HKD", "1,234.50 HKD"),
        (Decimal("1234.5"), "JPY", "1,235 JPY"),
        (Decimal("1234.5"), "KWD", "1,234.500 KWD"),
        (Decimal("-20"), "HKD", "-20.00 HKD"),
        (Decimal("-0.001"), "HKD", "0.00 HKD"),
        (None, "HKD", ""),
    ],
)
def test_money_shows_the_currencys_minor_digits(value, currency, shown):
    from settlements.templatetags.settlement_tags import money

    assert money(value, currency) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("4000.0000000000"), "4,000"),
        (Decimal("3248.1203007519"), "3,248.1203"),
        (Decimal("0"), "0"),
        (Decimal("12.5"), "12.5"),
    ],
)
def test_rates_show_without_trailing_zeros(value, shown):
    from settlements.templatetags.settlement_tags import bps

    assert bps(value) == shown


def test_inverse_rate_and_percentages():
    from settlements.templatetags.settlement_tags import inverse_rate, percent_of_bps

    assert inverse_rate(Decimal("8")) == "0.125"
    assert inverse_rate(Decimal("7.8")) == "0.1282051282"
    assert percent_of_bps(Decimal("4000")) == "40.00 %"
