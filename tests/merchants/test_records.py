"""Services for a merchant's records: rules, rights, encryption, history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from core.models import SensitiveAccess
from merchants import selectors, services, tasks
from merchants.models import Activity, BankAccount, BeneficialOwner, Contact, Document, Partner
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _owner(merchant, percent, actor=None, id_number="A1234567"):
    return services.owner_create(
        actor=actor or merchant.owner,
        merchant=merchant,
        full_name=f"Owner {percent}",
        nationality="HK",
        ownership_percent=Decimal(percent),
        id_number=id_number,
    )


def test_owners_may_not_hold_more_than_one_hundred_percent(sales1):
    merchant = MerchantFactory(owner=sales1)
    _owner(merchant, "60")
    _owner(merchant, "30")
    with pytest.raises(ValidationError) as exc:
        _owner(merchant, "10.01")
    assert "at most 100%" in exc.value.message_dict["ownership_percent"][0]
    assert BeneficialOwner.objects.filter(merchant=merchant).count() == 2
    _owner(merchant, "10")  # exactly 100 is fine


def test_raising_a_share_is_checked_against_the_others(sales1):
    merchant = MerchantFactory(owner=sales1)
    first = _owner(merchant, "50")
    _owner(merchant, "40")
    with pytest.raises(ValidationError):
        services.owner_update(owner=first, actor=sales1, ownership_percent=Decimal("61"))
    first.refresh_from_db()
    assert first.ownership_percent == Decimal("50")


def test_encrypted_columns_hold_no_plaintext(sales1):
    merchant = MerchantFactory(owner=sales1)
    owner = _owner(merchant, "100", id_number="K123456(7)")
    account = services.bank_account_create(
        actor=sales1,
        merchant=merchant,
        account_holder="Jade Limited",
        bank_name="HSBC",
        swift_code="HSBCHKHHHKH",
        country="HK",
        currency="HKD",
        account_number="004-123-456789012",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number FROM merchants_beneficialowner WHERE id = %s", [owner.pk])
        raw_id = cursor.fetchone()[0]
        cursor.execute(
            "SELECT account_number FROM merchants_bankaccount WHERE id = %s", [account.pk]
        )
        raw_account = cursor.fetchone()[0]
        cursor.execute(
            "SELECT account_number FROM merchants_historicalbankaccount WHERE id = %s", [account.pk]
        )
        raw_history = cursor.fetchone()[0]
    for raw, clear in ((raw_id, "K1234567"), (raw_account, "004123456789012")):
        assert raw.startswith("v1:")
        assert clear not in raw
        assert clear[-6:] not in raw
    assert "456789012" not in raw_history
    fresh = BankAccount.objects.get(pk=account.pk)
    assert fresh.account_number == "004123456789012"
    assert fresh.account_number_masked == "•••• 9012"


def test_reveal_needs_the_permission_and_is_recorded(sales1, compliance1):
    merchant = MerchantFactory(owner=sales1)
    owner = _owner(merchant, "100", id_number="X9876543")
    with pytest.raises(PermissionDenied):
        services.sensitive_reveal(actor=sales1, record=owner)
    assert not SensitiveAccess.objects.exists()
    value = services.sensitive_reveal(actor=compliance1, record=owner, ip_address="10.1.2.3")
    assert value == "X9876543"
    access = SensitiveAccess.objects.get()
    assert (access.user, access.field, access.ip_address) == (compliance1, "id_number", "10.1.2.3")
    assert access.object_label == "merchants.beneficialowner"


@pytest.mark.parametrize(
    ("number", "country", "swift", "field", "message"),
    [
        ("GB82 WEST 1234 5698 7654 31", "GB", "", "account_number", "Not a valid IBAN"),
        ("DE89370400440532013000", "FR", "", "account_number", "belongs to DE"),
        ("12-34", "HK", "", "account_number", "Hong Kong account number"),
        ("004123456789", "HK", "DEUTDEFF", "swift_code", "belongs to DE"),
        ("004123456789", "HK", "NOTABIC", "swift_code", "Not a valid SWIFT"),
    ],
)
def test_bank_account_numbers_are_validated(sales1, number, country, swift, field, message):
    merchant = MerchantFactory(owner=sales1)
    with pytest.raises(ValidationError) as exc:
        services.bank_account_create(
            actor=sales1,
            merchant=merchant,
            account_holder="X",
            bank_name="Bank",
            swift_code=swift,
            country=country,
            currency="HKD",
            account_number=number,
        )
    assert message in exc.value.message_dict[field][0]
    assert not BankAccount.objects.exists()


def test_the_same_account_on_two_merchants_is_found(sales1, sales2):
    a = MerchantFactory(owner=sales1)
    b = MerchantFactory(owner=sales2)
    common = {
        "account_holder": "Shared",
        "bank_name": "Deutsche Bank",
        "country": "DE",
        "currency": "EUR",
    }
    first = services.bank_account_create(
        actor=sales1, merchant=a, account_number="DE89 3704 0044 0532 0130 00", **common
    )
    services.bank_account_create(
        actor=sales2, merchant=b, account_number="de89370400440532013000", **common
    )
    assert services.bank_account_shared_with(account=first) == [b]
    a = selectors.merchant_360(user=sales1, pk=a.pk)
    assert selectors.shared_bank_accounts(merchant=a) == {first.pk: [b]}


def test_partner_cycles_are_refused_with_a_clear_message(admin1):
    top = services.partner_create(actor=admin1, name="Top ISO", kind="iso")
    mid = services.partner_create(actor=admin1, name="Mid Agent", parent=top)
    low = services.partner_create(actor=admin1, name="Low Agent", parent=mid)
    with pytest.raises(ValidationError) as exc:
        services.partner_update(partner=top, actor=admin1, parent=low)
    assert "cannot sit below itself" in exc.value.message_dict["parent"][0]
    with pytest.raises(ValidationError):
        services.partner_update(partner=top, actor=admin1, parent=top)
    top.refresh_from_db()
    assert top.parent is None
    assert selectors.partner_descendant_ids(partner=top) == {top.pk, mid.pk, low.pk}
    tree = selectors.partner_tree(user=admin1)
    assert [n.partner for n in tree] == [top]
    assert tree[0].children[0].children[0].depth == 2


def test_document_reupload_keeps_versions_and_checks_bytes(sales1):
    merchant = MerchantFactory(owner=sales1)
    first = services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="business_registration",
        upload=SimpleUploadedFile("br.pdf", PDF, content_type="application/pdf"),
    )
    second = services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="business_registration",
        upload=SimpleUploadedFile("br-2026.pdf", PDF + b"2", content_type="application/pdf"),
    )
    first.refresh_from_db()
    assert (first.version, first.is_current, second.version, second.is_current) == (
        1,
        False,
        2,
        True,
    )
    assert second.sha256 != first.sha256
    assert len(second.sha256) == 64
    assert second.content_type == "application/pdf"
    with pytest.raises(ValidationError) as exc:
        services.document_upload(
            actor=sales1,
            merchant=merchant,
            doc_type="owner_id",
            upload=SimpleUploadedFile(
                "id.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf"
            ),
        )
    assert "Only PDF, JPEG and PNG" in exc.value.message_dict["file"][0]
    assert Document.objects.filter(merchant=merchant).count() == 2


def test_document_review_needs_a_reason_to_reject_and_another_person(sales1, compliance1):
    merchant = MerchantFactory(owner=sales1)
    doc = services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="proof_of_address",
        upload=SimpleUploadedFile("a.pdf", PDF),
    )
    with pytest.raises(PermissionDenied):
        services.document_review(actor=sales1, document=doc, status="accepted")
    with pytest.raises(ValidationError) as exc:
        services.document_review(actor=compliance1, document=doc, status="rejected", reason=" ")
    assert "rejection_reason" in exc.value.message_dict
    services.document_review(actor=compliance1, document=doc, status="rejected", reason="Blurry")
    doc.refresh_from_db()
    assert (doc.status, doc.reviewed_by, doc.rejection_reason) == (
        "rejected",
        compliance1,
        "Blurry",
    )
    assert doc.history.first().history_user == compliance1


def test_expiring_documents_lists_expired_and_next_30_days_only(sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    today = timezone.localdate()
    soon = services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="owner_id",
        upload=SimpleUploadedFile("a.pdf", PDF),
        expires_on=today + timedelta(days=10),
    )
    services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="bank_statement",
        upload=SimpleUploadedFile("b.pdf", PDF),
        expires_on=today + timedelta(days=90),
    )
    assert list(selectors.documents_expiring(user=sales1)) == [soon]
    assert not selectors.documents_expiring(user=sales2).exists()


def test_tasks_need_a_due_date_and_other_kinds_have_none(sales1):
    merchant = MerchantFactory(owner=sales1)
    with pytest.raises(ValidationError) as exc:
        services.activity_log(actor=sales1, merchant=merchant, kind="task", subject="Call back")
    assert "due_on" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.activity_log(
            actor=sales1, merchant=merchant, kind="call", subject="x", due_on=timezone.localdate()
        )


def test_my_tasks_lists_overdue_first_and_digest_mails_each_assignee(sales1, sales2):
    sales1.email, sales2.email = "s1@paycrm.test", "s2@paycrm.test"
    sales1.save()
    sales2.save()
    today = timezone.localdate()
    m1 = MerchantFactory(owner=sales1)
    m2 = MerchantFactory(owner=sales2)
    later = services.activity_log(
        actor=sales1, merchant=m1, kind="task", subject="Send pricing", due_on=today + timedelta(2)
    )
    late = services.activity_log(
        actor=sales1, merchant=m1, kind="task", subject="Chase docs", due_on=today - timedelta(3)
    )
    services.activity_log(
        actor=sales2, merchant=m2, kind="task", subject="Visit shop", due_on=today - timedelta(1)
    )
    done = services.activity_log(
        actor=sales2, merchant=m2, kind="task", subject="Old", due_on=today - timedelta(9)
    )
    services.task_complete(actor=sales2, task=done)
    assert list(selectors.my_open_tasks(user=sales1)) == [late, later]

    assert tasks.overdue_task_digest.apply().get() == 2
    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert "Chase docs" in by_recipient["s1@paycrm.test"].body
    assert "Send pricing" not in by_recipient["s1@paycrm.test"].body
    assert "Visit shop" in by_recipient["s2@paycrm.test"].body
    assert "Old" not in by_recipient["s2@paycrm.test"].body


def test_only_one_active_pricing_plan(sales1):
    merchant = MerchantFactory(owner=sales1)
    rates = [{"method": "card_domestic", "percent": Decimal("1.8"), "fixed_fee": Decimal("2.00")}]
    first = services.pricing_plan_create(
        actor=sales1, merchant=merchant, name="Standard", currency="HKD", rates=rates
    )
    second = services.pricing_plan_create(
        actor=sales1, merchant=merchant, name="Volume", currency="HKD", rates=rates
    )
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
    with pytest.raises(ValidationError) as exc:
        services.pricing_plan_create(
            actor=sales1,
            merchant=merchant,
            name="Bad",
            currency="HKD",
            rates=[{"method": "alipay", "percent": Decimal("120"), "fixed_fee": Decimal("0")}],
        )
    assert any("percent" in key for key in exc.value.message_dict)
    second.refresh_from_db()
    assert second.is_active


def test_records_of_other_owners_merchants_cannot_be_written(sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    with pytest.raises(PermissionDenied):
        services.contact_create(actor=sales2, merchant=merchant, name="Intruder")
    with pytest.raises(PermissionDenied):
        services.activity_log(actor=sales2, merchant=merchant, kind="note", subject="x")
    assert not Activity.objects.exists()


def test_transfer_by_team_manager_moves_access(sales1, sales2, team_hk):
    manager = UserFactory(roles=["sales"])
    team_hk.manager = manager
    team_hk.save()
    merchant = MerchantFactory(owner=sales1)
    with pytest.raises(PermissionDenied):
        services.merchant_transfer(merchant=merchant, new_owner=sales2, actor=sales2, reason="x")
    with pytest.raises(ValidationError):
        services.merchant_transfer(merchant=merchant, new_owner=sales2, actor=manager, reason="")
    services.merchant_transfer(merchant=merchant, new_owner=sales2, actor=manager, reason="leave")
    assert merchant not in selectors.merchant_list(user=sales1)
    assert merchant in selectors.merchant_list(user=sales2)
    latest = merchant.history.first()
    assert latest.history_user == manager
    assert latest.history_change_reason == "ownership transfer: leave"


def test_partner_records_follow_partner_rights(admin1, sales1):
    partner = Partner.objects.create(name="Agent A")
    contact = services.contact_create(actor=admin1, partner=partner, name="Agent contact")
    assert list(selectors.records_visible(user=sales1, model=Contact)) == [contact]
    nobody = UserFactory()
    assert not selectors.records_visible(user=nobody, model=Contact).exists()
    with pytest.raises(PermissionDenied):
        services.contact_create(actor=sales1, partner=partner, name="Not allowed")


def test_activation_issues_a_unique_mid_once(sales1, admin1):
    merchant = MerchantFactory(owner=sales1)
    with pytest.raises(ValidationError):
        services.merchant_activate(merchant=merchant, actor=admin1, reason="approved")
    services.merchant_change_status(merchant=merchant, actor=sales1, status="onboarding", reason="")
    active = services.merchant_activate(merchant=merchant, actor=admin1, reason="approved")
    assert active.status == "active"
    assert active.mid == f"MHK{merchant.pk:08d}"
    latest = merchant.history.first()
    assert (latest.status, latest.mid, latest.history_user) == ("active", active.mid, admin1)
