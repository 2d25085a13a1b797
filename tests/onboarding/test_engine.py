"""The onboarding engine: versions, conditions, four eyes, information requests."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from core.exceptions import DomainError, TransitionError
from merchants import services as merchant_services
from merchants.models import Merchant
from onboarding import conditions, services
from onboarding.models import Application, StepDecision
from onboarding.standard import standard_steps
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def people(db):
    return {
        "onboarding": UserFactory(username="ob1", roles=["onboarding"]),
        "onboarding2": UserFactory(username="ob2", roles=["onboarding"]),
        "compliance": UserFactory(username="co1", roles=["compliance"]),
        "risk": UserFactory(username="ri1", roles=["risk"]),
        "risk2": UserFactory(username="ri2", roles=["risk"]),
        "sales_peer": UserFactory(username="sp1", roles=["sales"]),
        "admin": UserFactory(username="ad1", roles=["admin"]),
    }


@pytest.fixture
def standard(people):
    definition = services.definition_create(
        actor=people["admin"], key="standard", name="Standard", steps=standard_steps()
    )
    return services.definition_publish(actor=people["admin"], definition=definition)


def _with_accepted_documents(merchant):
    reviewer = UserFactory(roles=["compliance"])
    for doc_type in ("business_registration", "owner_id"):
        document = merchant_services.document_upload(
            actor=merchant.owner,
            merchant=merchant,
            doc_type=doc_type,
            upload=SimpleUploadedFile(f"{doc_type}.pdf", b"%PDF-1.4\n%%EOF\n"),
        )
        merchant_services.document_review(actor=reviewer, document=document, status="accepted")
    return merchant


def _submitted(merchant, standard):
    _with_accepted_documents(merchant)
    application = services.application_create(actor=merchant.owner, merchant=merchant)
    return services.application_submit(actor=merchant.owner, application=application)


def _approve(application, user):
    return services.decision_record(actor=user, application=application, kind="approve")


def _names(application):
    return [s.name for s in services.applicable_steps(application)]


def test_conditions_are_validated_and_evaluated_without_eval():
    facts = {
        "merchant.risk_level": "low",
        "merchant.country": "HK",
        "merchant.mcc": "5812",
        "merchant.business_type": "private_company",
        "merchant.expected_monthly_volume": Decimal("1000000.01"),
        "merchant.volume_currency": "HKD",
    }
    rule = {"field": "merchant.expected_monthly_volume", "op": "gt", "value": "1000000"}
    assert conditions.evaluate(rule, facts)
    assert not conditions.evaluate(
        {"all": [rule, {"field": "merchant.country", "op": "in", "value": ["SG"]}]}, facts
    )
    for bad in (
        {"field": "merchant.owner.password", "op": "eq", "value": "x"},
        {"field": "merchant.mcc", "op": "gt", "value": "1"},
        {"field": "merchant.expected_monthly_volume", "op": "eq", "value": "__import__('os')"},
        {"any": []},
        {"all": [rule], "any": [rule]},
    ):
        with pytest.raises(ValidationError):
            conditions.validate(bad)
    assert conditions.describe(rule) == "expected_monthly_volume > 1000000"


def test_conditional_risk_step_is_skipped_or_required_by_the_merchants_data(standard, sales1):
    plain = MerchantFactory(owner=sales1, risk_level="low", expected_monthly_volume=Decimal("5000"))
    big = MerchantFactory(
        owner=sales1, risk_level="low", expected_monthly_volume=Decimal("2000000")
    )
    risky_mcc = MerchantFactory(owner=sales1, mcc="7995")
    apps = [services.application_create(actor=sales1, merchant=m) for m in (plain, big, risky_mcc)]
    assert "Risk review" not in _names(apps[0])
    assert "Risk review" in _names(apps[1])
    assert "Risk review" in _names(apps[2])


def test_the_submitter_cannot_approve(standard, sales1):
    merchant = MerchantFactory(owner=sales1)
    application = _submitted(merchant, standard)
    assert application.current_step.name == "Sales review"
    with pytest.raises(TransitionError, match="submitted this application"):
        _approve(application, sales1)


def test_only_the_steps_group_decides(standard, sales1, people):
    application = _submitted(MerchantFactory(owner=sales1), standard)
    with pytest.raises(PermissionDenied):
        _approve(application, people["onboarding"])
    _approve(application, people["sales_peer"])
    application.refresh_from_db()
    assert application.current_step.name == "Document check"


def test_four_eyes_step_needs_two_different_people(standard, sales1, people):
    merchant = MerchantFactory(owner=sales1, risk_level="high")
    application = _submitted(merchant, standard)
    _approve(application, people["sales_peer"])
    _approve(application, people["onboarding"])
    _approve(application, people["compliance"])
    application.refresh_from_db()
    assert application.current_step.name == "Risk review"
    _approve(application, people["risk"])
    with pytest.raises(TransitionError, match="already decided"):
        _approve(application, people["risk"])
    application.refresh_from_db()
    assert application.current_step.name == "Risk review"
    _approve(application, people["risk2"])
    application.refresh_from_db()
    assert application.current_step.name == "Contract approval"
    _approve(application, people["onboarding2"])
    application.refresh_from_db()
    merchant.refresh_from_db()
    assert application.status == "approved"
    assert (merchant.status, merchant.mid) == ("active", f"MHK{merchant.pk:08d}")


def test_information_request_round_trip_returns_to_the_same_step(standard, sales1, people):
    application = _submitted(MerchantFactory(owner=sales1), standard)
    _approve(application, people["sales_peer"])
    services.decision_record(
        actor=people["onboarding"],
        application=application,
        kind="request_info",
        items=["Bank statement for the last 3 months"],
    )
    application.refresh_from_db()
    assert application.status == "info_requested"
    with pytest.raises(TransitionError):
        _approve(application, people["onboarding2"])
    services.application_resubmit(actor=sales1, application=application)
    application.refresh_from_db()
    assert (application.status, application.current_step.name) == ("in_review", "Document check")
    # a new visit: the same person may decide again
    _approve(application, people["onboarding"])
    application.refresh_from_db()
    assert application.current_step.name == "KYB review"
    assert application.information_requests.get().resolved_at is not None


def test_send_back_and_reject(standard, sales1, people):
    application = _submitted(MerchantFactory(owner=sales1), standard)
    _approve(application, people["sales_peer"])
    first = application.definition.steps.get(position=1)
    with pytest.raises(ValidationError):
        services.decision_record(
            actor=people["onboarding"],
            application=application,
            kind="send_back",
            comment="",
            send_back_to=first,
        )
    services.decision_record(
        actor=people["onboarding"],
        application=application,
        kind="send_back",
        comment="Wrong MCC",
        send_back_to=first,
    )
    application.refresh_from_db()
    assert application.current_step == first
    services.decision_record(
        actor=people["sales_peer"], application=application, kind="reject", comment="Fake shop"
    )
    application.refresh_from_db()
    assert (application.status, application.outcome_reason) == ("rejected", "Fake shop")
    assert Merchant.objects.get(pk=application.merchant_id).mid is None


def test_a_definition_edit_does_not_change_running_applications(standard, sales1, people):
    running = _submitted(MerchantFactory(owner=sales1), standard)
    draft = services.definition_new_version(actor=people["admin"], definition=standard)
    kyb = draft.steps.get(name="KYB review")
    services.step_update(actor=people["admin"], step=kyb, approvals_required=2)
    with pytest.raises(DomainError):
        services.step_update(
            actor=people["admin"], step=standard.steps.get(name="KYB review"), approvals_required=3
        )
    services.definition_publish(actor=people["admin"], definition=draft)
    standard.refresh_from_db()
    assert standard.status == "retired"
    running.refresh_from_db()
    assert running.definition == standard
    assert running.definition.steps.get(name="KYB review").approvals_required == 1
    fresh = services.application_create(actor=sales1, merchant=MerchantFactory(owner=sales1))
    assert fresh.definition == draft


def test_one_open_application_per_merchant_and_history_names_deciders(standard, sales1, people):
    merchant = MerchantFactory(owner=sales1)
    application = _submitted(merchant, standard)
    with pytest.raises(ValidationError):
        services.application_create(actor=sales1, merchant=merchant)
    _approve(application, people["sales_peer"])
    decision = StepDecision.objects.get()
    assert decision.history.get().history_user == people["sales_peer"]
    assert application.history.first().history_user == people["sales_peer"]


def test_bad_step_definitions_are_refused(people):
    steps = standard_steps()
    steps[3]["condition"] = {"field": "merchant.mcc", "op": "lt", "value": "5"}
    with pytest.raises(ValidationError) as exc:
        services.definition_create(actor=people["admin"], key="x", name="X", steps=steps)
    assert any(key.startswith("steps[4]") for key in exc.value.message_dict)
    with pytest.raises(PermissionDenied):
        services.definition_create(actor=people["risk"], key="y", name="Y", steps=standard_steps())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_decisions_yield_exactly_one_transition():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only meaningful on PostgreSQL; set DATABASE_URL to run")
    restore_roles()  # an earlier transactional test's flush removed them
    people = {"admin": UserFactory(username="ad9", roles=["admin"])}
    definition = services.definition_create(
        actor=people["admin"], key="standard", name="Standard", steps=standard_steps()
    )
    services.definition_publish(actor=people["admin"], definition=definition)
    owner = UserFactory(username="own1", roles=["sales"])
    application = _submitted(MerchantFactory(owner=owner), definition)
    deciders = [UserFactory(username=f"peer{i}", roles=["sales"]) for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(user):
        try:
            barrier.wait(timeout=10)
            _approve(Application.objects.get(pk=application.pk), user)
            outcomes.append("ok")
        except (TransitionError, PermissionDenied) as exc:
            outcomes.append(f"refused: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(u,)) for u in deciders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    application.refresh_from_db()
    # Sales review needs one approval: the first moves the application on, the
    # second finds it at the next step, where sales does not decide.
    assert application.current_step.name == "Document check"
    assert application.step_round == 2
    assert outcomes.count("ok") == 1
    assert len(outcomes) == 2
    assert StepDecision.objects.filter(kind="approve").count() == 1


def test_seed_workflow_publishes_the_standard_definition_once(people):
    from django.core.management import call_command

    call_command("seed_workflow", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_workflow", stdout=open("/dev/null", "w"))  # noqa: SIM115
    definition = services.published_definition("standard")
    assert [s.name for s in definition.steps.all()] == [
        "Sales review",
        "Document check",
        "KYB review",
        "Risk review",
        "Contract approval",
    ]
    assert definition.history.first().history_user == people["admin"]


def test_seed_workflow_puts_demo_applications_in_flight(settings, tmp_path):
    from django.core.management import call_command

    settings.MEDIA_ROOT = tmp_path
    call_command("seed_demo", merchants=40, stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_workflow", stdout=open("/dev/null", "w"))  # noqa: SIM115
    statuses = set(Application.objects.values_list("status", flat=True))
    assert statuses <= {"in_review", "info_requested"}
    assert Application.objects.exists()
    count = Application.objects.count()
    call_command("seed_workflow", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert Application.objects.count() == count  # a second run adds nothing
