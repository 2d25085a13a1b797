"""``verify_audit_trail --records``: the records behind the trail say what it proves."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from core import audit, trailcheck
from merchants import services as merchant_services
from merchants.models import Merchant
from settlements.models import Transaction
from settlements.services import ingestion
from tests.core.tamper import tamper
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory

pytestmark = pytest.mark.django_db


def _records_problems() -> list[str]:
    return trailcheck.verify(records=True).problems


@pytest.fixture
def ledger(finance1, admin1):
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    merchant = merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="t")
    source = TransactionSourceFactory(code="acme-pay")
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(5)]
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    assert report.created == 5
    return merchant, report.created_ids


def test_an_untouched_trail_and_its_records_verify_intact(ledger, sales1):
    merchant, _ids = ledger
    merchant_services.merchant_update(
        merchant=merchant, actor=merchant.owner, reason="rename", trading_name="New Name"
    )
    result = trailcheck.verify(records=True)
    assert result.intact, result.problems
    assert result.records >= 5


def test_a_changed_transaction_amount_is_named(ledger):
    _merchant, ids = ledger
    tamper("UPDATE settlements_transaction SET amount = amount + 1 WHERE id = %s", [ids[2]])
    problems = _records_problems()
    assert any(
        "settlements.transaction" in p and "changed in the database" in p for p in problems
    ), problems


def test_a_transaction_inserted_around_the_service_is_named(ledger):
    _merchant, ids = ledger
    row = Transaction.objects.get(pk=ids[0])
    row.pk, row.external_id = None, "inserted_by_hand"
    Transaction.objects.bulk_create([row])  # no entry proves it
    problems = _records_problems()
    assert any(f"settlements.transaction #{row.pk}" in p for p in problems), problems


def test_a_deleted_transaction_is_named(ledger):
    _merchant, ids = ledger
    tamper("DELETE FROM settlements_transaction WHERE id = %s", [ids[1]])
    problems = _records_problems()
    assert any(f"#{ids[1]} deleted" in p for p in problems), problems


def test_a_merchant_status_changed_in_the_database_is_named(ledger):
    merchant, _ids = ledger
    tamper("UPDATE merchants_merchant SET status = 'offboarded' WHERE id = %s", [merchant.pk])
    problems = _records_problems()
    assert any(
        f"merchants.merchant #{merchant.pk} changed in the database: status is 'offboarded'" in p
        for p in problems
    ), problems


def test_a_changed_history_row_is_named(ledger):
    merchant, _ids = ledger
    history = merchant.history.order_by("-history_id").first()
    tamper(
        "UPDATE merchants_historicalmerchant SET risk_level = 'low', legal_name = 'X' "
        "WHERE history_id = %s",
        [history.history_id],
    )
    problems = _records_problems()
    assert any(
        f"merchants.historicalmerchant #{history.history_id} changed in the database" in p
        for p in problems
    ), problems


def test_the_command_exits_1_and_prints_each_mismatch(ledger):
    merchant, ids = ledger
    tamper("UPDATE settlements_transaction SET fee = 0 WHERE id = %s", [ids[0]])
    tamper("UPDATE merchants_merchant SET mid = 'FORGED' WHERE id = %s", [merchant.pk])
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit_trail", "--records", "--no-record", stdout=out)
    assert exit_.value.code == 1
    assert "settlements.transaction" in out.getvalue()
    assert f"merchants.merchant #{merchant.pk} changed in the database: mid" in out.getvalue()


def test_the_record_page_of_a_transaction_shows_its_batch_entry(web, compliance1, ledger):
    _merchant, ids = ledger
    url = reverse("core:audit_record", args=["settlements.transaction", ids[3]])
    response = web(compliance1).get(url)
    assert response.status_code == 200
    [entry] = response.context["page"].object_list
    assert entry.object_label == "5 transactions from acme-pay"
    assert entry.row_model == "settlements.transaction"


def test_a_group_membership_granted_in_the_database_is_named(ledger, sales1):
    from django.contrib.auth.models import Group

    finance = Group.objects.get(name="finance")
    tamper(
        "INSERT INTO core_user_groups (user_id, group_id) VALUES (%s, %s)", [sales1.pk, finance.pk]
    )
    problems = _records_problems()
    assert any(
        f"core.user #{sales1.pk} groups changed in the database: #{finance.pk} added" in p
        for p in problems
    ), problems


def test_a_permission_taken_from_a_group_in_the_database_is_named(ledger):
    from django.contrib.auth.models import Group

    finance = Group.objects.get(name="finance")
    through = Group.permissions.through
    granted = through.objects.filter(group=finance).order_by("permission_id").first()
    tamper("DELETE FROM auth_group_permissions WHERE id = %s", [granted.pk])
    problems = _records_problems()
    assert any(
        f"auth.group #{finance.pk} permissions changed in the database: "
        f"#{granted.permission_id} removed" in p
        for p in problems
    ), problems


def test_groups_changed_through_the_application_verify_intact(ledger, sales1, admin1):
    from django.contrib.auth.models import Group

    with audit.acting_as(admin1, origin="test"):
        sales1.groups.add(Group.objects.get(name="compliance"))
        sales1.groups.remove(Group.objects.get(name="compliance"))
        sales1.groups.add(Group.objects.get(name="risk"))
    assert _records_problems() == []


def test_a_grant_made_by_a_migration_is_put_on_the_trail_after_migrate(ledger):
    """Migrations grant permissions without history (as ``core.roles`` does);
    the post-migrate step records them, once, by the system account."""
    from django.contrib.auth.models import Group, Permission

    from core.models import AuditEntry
    from core.services import role_grants_record, system_user

    risk = Group.objects.get(name="risk")
    permission = Permission.objects.exclude(group=risk).order_by("pk").first()
    Group.permissions.through.objects.create(group=risk, permission=permission)  # no signal
    assert any(f"auth.group #{risk.pk} permissions" in p for p in _records_problems())
    since = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first()
    # when
    assert role_grants_record() == 1
    # then
    entry = AuditEntry.objects.get(id__gt=since, model="auth.group")
    assert (entry.object_id, entry.actor_id, entry.origin) == (
        str(risk.pk),
        system_user().pk,
        "command migrate",
    )
    assert entry.reason == "role grants as installed by migrations"
    assert _records_problems() == []
    assert role_grants_record() == 0


def test_with_every_grant_recorded_the_post_migrate_step_writes_nothing(ledger):
    from core.models import AuditEntry
    from core.services import role_grants_record

    entries = AuditEntry.objects.count()
    assert role_grants_record() == 0
    assert AuditEntry.objects.count() == entries
