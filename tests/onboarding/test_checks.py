"""Compliance checks on submission: screening, documents, high risk, shared accounts."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from core.exceptions import TransitionError
from merchants import services as merchant_services
from onboarding import checks, screening, services
from onboarding.models import ComplianceCheck
from onboarding.standard import standard_steps
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_screening_list", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def people(db):
    admin = UserFactory(username="ad1", roles=["admin"])
    definition = services.definition_create(
        actor=admin, key="standard", name="Standard", steps=standard_steps()
    )
    services.definition_publish(actor=admin, definition=definition)
    return {
        "peer": UserFactory(username="sp1", roles=["sales"]),
        "onboarding": UserFactory(username="ob1", roles=["onboarding"]),
        "compliance": UserFactory(username="co1", roles=["compliance"]),
    }


def _upload(merchant, doc_type):
    return merchant_services.document_upload(
        actor=merchant.owner, merchant=merchant, doc_type=doc_type,
        upload=SimpleUploadedFile(f"{doc_type}.pdf", PDF),
    )  # fmt: skip


def _submit(merchant, django_capture_on_commit_callbacks):
    application = services.application_create(actor=merchant.owner, merchant=merchant)
    with django_capture_on_commit_callbacks(execute=True):
        services.application_submit(actor=merchant.owner, application=application)
    application.refresh_from_db()
    return application


@pytest.mark.parametrize(
    ("name", "hit"),
    [
        ("CRIMSON HARBOUR TRADING LTD.", True),  # case, punctuation, suffix
        ("Trading Crimson Harbour Co", True),  # word order
        ("Crimson Harbor Trading Company Limited", True),  # alias spelling
        ("Petrov, Viktor Sorokin", True),
        ("Crimson Tide Bakery Limited", False),
        ("Harbour Noodle House", False),
    ],
)
def test_screening_normalises_and_matches_fuzzily(name, hit):
    assert bool(screening.screen([name])) is hit


def test_a_sanctions_hit_blocks_its_step_until_compliance_clears_it(
    people, sales1, django_capture_on_commit_callbacks
):
    merchant = MerchantFactory(owner=sales1, legal_name="Crimson Harbour Trading Limited")
    _upload(merchant, "business_registration")
    _upload(merchant, "owner_id")
    application = _submit(merchant, django_capture_on_commit_callbacks)
    sanctions = application.compliance_checks.get(kind="sanctions")
    assert sanctions.status == "hit"
    assert sanctions.blocks_step.name == "KYB review"
    assert sanctions.detail[0]["listed"] == "Crimson Harbour Trading Limited"
    assert application.compliance_checks.get(kind="documents").status == "passed"

    services.decision_record(actor=people["peer"], application=application, kind="approve")
    for document in merchant.documents.all():
        merchant_services.document_review(
            actor=people["compliance"], document=document, status="accepted"
        )
    services.decision_record(actor=people["onboarding"], application=application, kind="approve")
    with pytest.raises(TransitionError, match="Blocked until compliance"):
        services.decision_record(
            actor=people["compliance"], application=application, kind="approve"
        )
    with pytest.raises(Exception, match="why"):
        checks.compliance_check_resolve(
            actor=people["compliance"], check=sanctions, status="cleared", reason=""
        )
    checks.compliance_check_resolve(
        actor=people["compliance"], check=sanctions, status="cleared",
        reason="Different company: registered 2019 in Kowloon, list entry is a shipping firm",
    )  # fmt: skip
    services.decision_record(actor=people["compliance"], application=application, kind="approve")
    application.refresh_from_db()
    assert application.current_step.name == "Contract approval"
    sanctions.refresh_from_db()
    assert sanctions.history.first().history_user == people["compliance"]


def test_documents_must_be_present_and_accepted(people, sales1, django_capture_on_commit_callbacks):
    merchant = MerchantFactory(owner=sales1)
    _upload(merchant, "business_registration")
    application = _submit(merchant, django_capture_on_commit_callbacks)
    documents = application.compliance_checks.get(kind="documents")
    assert documents.status == "hit"
    assert documents.detail == ["owner_id"]
    assert documents.blocks_step.name == "Document check"
    services.decision_record(actor=people["peer"], application=application, kind="approve")
    with pytest.raises(TransitionError):
        services.decision_record(
            actor=people["onboarding"], application=application, kind="approve"
        )


def test_high_risk_mcc_and_shared_bank_account_are_hits(
    people, sales1, sales2, django_capture_on_commit_callbacks
):
    merchant = MerchantFactory(owner=sales1, mcc="7995", expected_monthly_volume=Decimal("1"))
    other = MerchantFactory(owner=sales2)
    for m in (merchant, other):
        merchant_services.bank_account_create(
            actor=m.owner, merchant=m, account_holder="H", bank_name="B", country="HK",
            currency="HKD", account_number="004-123-999999999",
        )  # fmt: skip
    application = _submit(merchant, django_capture_on_commit_callbacks)
    statuses = dict(application.compliance_checks.values_list("kind", "status"))
    assert statuses["high_risk"] == "hit"
    assert statuses["shared_bank"] == "hit"
    assert other.legal_name in application.compliance_checks.get(kind="shared_bank").summary


def test_only_compliance_resolves_hits(people, sales1, django_capture_on_commit_callbacks):
    merchant = MerchantFactory(owner=sales1, mcc="7995")
    application = _submit(merchant, django_capture_on_commit_callbacks)
    hit = application.compliance_checks.get(kind="high_risk")
    with pytest.raises(Exception):  # noqa: B017, PT011  PermissionDenied
        checks.compliance_check_resolve(
            actor=people["onboarding"], check=hit, status="cleared", reason="fine"
        )
    assert ComplianceCheck.objects.get(pk=hit.pk).status == "hit"
