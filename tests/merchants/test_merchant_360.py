"""The merchant 360 page and its forms."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from core.models import SensitiveAccess
from merchants import services
from merchants.models import Activity, Contact, Document
from tests.factories.merchants import MerchantFactory, PartnerFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _fill(merchant, n: int) -> None:
    actor = merchant.owner
    for i in range(n):
        services.contact_create(actor=actor, merchant=merchant, name=f"Contact {i}")
        services.activity_log(actor=actor, merchant=merchant, kind="call", subject=f"Call {i}")
        services.bank_account_create(
            actor=actor,
            merchant=merchant,
            account_holder="Holder",
            bank_name=f"Bank {i}",
            country="HK",
            currency="HKD",
            account_number=f"004123{100000 + i}",
        )
        services.document_upload(
            actor=actor,
            merchant=merchant,
            doc_type=Document.Type.values[i % len(Document.Type.values)],
            upload=SimpleUploadedFile(f"d{i}.pdf", PDF + str(i).encode()),
        )
        services.contract_create(actor=actor, merchant=merchant, starts_on=timezone.localdate())
    services.owner_create(
        actor=actor,
        merchant=merchant,
        full_name="Owner",
        nationality="HK",
        ownership_percent=Decimal("100"),
        id_number="A1234567",
    )
    services.pricing_plan_create(
        actor=actor,
        merchant=merchant,
        name="Standard",
        currency="HKD",
        rates=[{"method": "fps", "percent": Decimal("0.8"), "fixed_fee": Decimal("0")}],
    )


@pytest.mark.parametrize("children", [5, 50])
def test_360_page_runs_a_constant_number_of_queries(
    web, sales1, children, django_assert_num_queries
):
    merchant = MerchantFactory(owner=sales1, partner=PartnerFactory())
    _fill(merchant, children)
    client = web(sales1)
    client.get(merchant.get_absolute_url())
    # merchant + records (prefetch), timeline sources, shared accounts, forms, session…
    with django_assert_num_queries(34):
        response = client.get(merchant.get_absolute_url())
    assert response.status_code == 200
    assert response.content.decode().count("Contact ") >= children


def test_sales_user_adds_contact_logs_call_uploads_document_and_sees_the_timeline(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    client = web(sales1)
    url = merchant.get_absolute_url()

    response = client.post(
        reverse("merchants:contact_add", args=[merchant.pk]),
        {"name": "Ada Wong", "title": "CFO", "email": "ada@example.com", "phone": "+852 5555 0000"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{url}?tab=contacts"
    response = client.post(
        reverse("merchants:activity_add", args=[merchant.pk]),
        {"kind": "call", "subject": "Intro call with Ada", "body": "Wants FPS and Octopus"},
    )
    assert response.status_code == 302
    response = client.post(
        reverse("merchants:document_add", args=[merchant.pk]),
        {"doc_type": "business_registration", "file": SimpleUploadedFile("br.pdf", PDF)},
    )
    assert response.status_code == 302

    page = client.get(url).content.decode()
    timeline = page[page.index('data-testid="timeline"') :]
    assert "Contact added: Ada Wong" in timeline
    assert "Intro call with Ada" in timeline
    assert "Document uploaded: br.pdf" in timeline
    assert timeline.index("Document uploaded") < timeline.index("Contact added")  # newest first
    assert Contact.objects.get().history.first().history_user == sales1


def test_form_errors_come_back_on_their_fields_and_nothing_is_saved(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    client = web(sales1)
    response = client.post(
        reverse("merchants:owner_add", args=[merchant.pk]),
        {"full_name": "A", "nationality": "HK", "ownership_percent": "150", "id_number": "A123456"},
    )
    assert response.status_code == 400
    assert "ownership_percent" in response.context["owner_form"].errors
    response = client.post(
        reverse("merchants:bank_add", args=[merchant.pk]),
        {
            "account_holder": "X",
            "bank_name": "Y",
            "country": "HK",
            "currency": "HKD",
            "account_number": "12",
        },
    )
    assert response.status_code == 400
    assert "account_number" in response.context["bank_form"].errors
    response = client.post(
        reverse("merchants:activity_add", args=[merchant.pk]), {"kind": "task", "subject": "x"}
    )
    assert response.status_code == 400
    assert "due_on" in response.context["activity_form"].errors
    assert not Activity.objects.exists()
    assert not merchant.owners.exists()


def test_other_owners_merchant_records_are_404_on_every_page(web, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    doc = services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="owner_id",
        upload=SimpleUploadedFile("a.pdf", PDF),
    )
    task = services.activity_log(
        actor=sales1,
        merchant=merchant,
        kind="task",
        subject="t",
        due_on=timezone.localdate() + timedelta(1),
    )
    client = web(sales2)
    for name, args in [
        ("merchants:detail", [merchant.pk]),
        ("merchants:document_download", [merchant.pk, doc.pk]),
        ("merchants:transfer", [merchant.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404, name
    for name, args in [
        ("merchants:contact_add", [merchant.pk]),
        ("merchants:activity_add", [merchant.pk]),
        ("merchants:document_review", [merchant.pk, doc.pk]),
        ("merchants:reveal", [merchant.pk, "owner", 1]),
        ("merchants:task_done", [task.pk]),
    ]:
        assert client.post(reverse(name, args=args), {"name": "x"}).status_code == 404, name
    assert not Contact.objects.exists()
    task.refresh_from_db()
    assert task.done_at is None


def test_reveal_on_the_page_is_permission_checked_and_recorded(web, sales1, compliance1):
    merchant = MerchantFactory(owner=sales1)
    account = services.bank_account_create(
        actor=sales1,
        merchant=merchant,
        account_holder="H",
        bank_name="B",
        country="HK",
        currency="HKD",
        account_number="004-123-456789",
    )
    url = reverse("merchants:reveal", args=[merchant.pk, "bank", account.pk])
    page = web(sales1).get(merchant.get_absolute_url()).content.decode()
    assert "004123456789" not in page
    assert "•••• 6789" in page
    assert web(sales1).post(url).status_code == 403
    response = web(compliance1).post(url)
    assert response.status_code == 200
    assert "004123456789" in response.content.decode()
    assert SensitiveAccess.objects.get().user == compliance1


def test_transfer_page_only_for_managers_and_admins(web, admin1, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    assert web(sales1).get(reverse("merchants:transfer", args=[merchant.pk])).status_code == 403
    response = web(admin1).post(
        reverse("merchants:transfer", args=[merchant.pk]),
        {"new_owner": sales2.pk, "reason": "territory change"},
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.owner == sales2


def test_tasks_and_expiring_pages_list_only_own_items(web, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    services.activity_log(
        actor=sales1,
        merchant=merchant,
        kind="task",
        subject="Collect BR copy",
        due_on=timezone.localdate() - timedelta(1),
    )
    services.document_upload(
        actor=sales1,
        merchant=merchant,
        doc_type="owner_id",
        upload=SimpleUploadedFile("a.pdf", PDF),
        expires_on=timezone.localdate() + timedelta(5),
    )
    assert "Collect BR copy" in web(sales1).get(reverse("merchants:tasks")).content.decode()
    assert "Collect BR copy" not in web(sales2).get(reverse("merchants:tasks")).content.decode()
    expiring = web(sales1).get(reverse("merchants:documents_expiring")).content.decode()
    assert merchant.legal_name in expiring
    assert (
        merchant.legal_name
        not in web(sales2).get(reverse("merchants:documents_expiring")).content.decode()
    )


def test_partner_pages_show_tree_and_referred_merchants(web, admin1, sales1, sales2):
    top = services.partner_create(actor=admin1, name="Pearl ISO", kind="iso")
    sub = services.partner_create(actor=admin1, name="Kowloon Agent", parent=top)
    mine = MerchantFactory(owner=sales1, partner=sub)
    theirs = MerchantFactory(owner=sales2, partner=sub)
    tree = web(sales1).get(reverse("merchants:partners")).content.decode()
    assert "Pearl ISO" in tree
    assert "Kowloon Agent" in tree
    detail = web(sales1).get(reverse("merchants:partner_detail", args=[sub.pk])).content.decode()
    assert mine.legal_name in detail
    assert theirs.legal_name not in detail
    response = web(admin1).post(
        reverse("merchants:partner_edit", args=[top.pk]),
        {"name": "Pearl ISO", "kind": "iso", "parent": sub.pk, "status": "active"},
    )
    assert response.status_code == 400
    assert "cannot sit below itself" in response.content.decode()
    assert web(sales1).get(reverse("merchants:partner_create")).status_code == 403


def test_admin_adds_partner_contact_and_payout_account(web, admin1, sales1):
    partner = services.partner_create(actor=admin1, name="Agent Z")
    client = web(admin1)
    client.post(reverse("merchants:partner_contact_add", args=[partner.pk]), {"name": "Zed"})
    response = client.post(
        reverse("merchants:partner_bank_add", args=[partner.pk]),
        {
            "account_holder": "Agent Z Ltd",
            "bank_name": "HSBC",
            "country": "HK",
            "currency": "HKD",
            "account_number": "004-500-123456",
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("merchants:partner_detail", args=[partner.pk])).content.decode()
    assert "Zed" in page
    assert "•••• 3456" in page
    assert "004500123456" not in page
    denied = web(sales1).post(
        reverse("merchants:partner_contact_add", args=[partner.pk]), {"name": "No"}
    )
    assert denied.status_code == 403


def test_contract_is_signed_from_the_page(web, sales1):
    merchant = MerchantFactory(owner=sales1)
    contract = services.contract_create(
        actor=sales1, merchant=merchant, starts_on=timezone.localdate()
    )
    url = reverse("merchants:contract_sign", args=[merchant.pk, contract.pk])
    future = (timezone.localdate() + timedelta(3)).isoformat()
    web(sales1).post(url, {"signed_on": future, "signed_by": "Ada"})
    contract.refresh_from_db()
    assert contract.status == "draft"  # a future date is refused
    web(sales1).post(url, {"signed_on": timezone.localdate().isoformat(), "signed_by": "Ada"})
    contract.refresh_from_db()
    assert (contract.status, contract.signed_by) == ("signed", "Ada")
