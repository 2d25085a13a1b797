"""The audit trail: one entry per change, whoever and wherever it came from;
a chain that finds any edit; secrets never in clear."""

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

from core import auditkeys, checkpoints, evidence, services, trail, trail_guards
from core.models import AuditEntry, AuditSeal, AuthEvent, Team, User
from merchants import tasks
from merchants.models import Merchant
from merchants.services import records as merchant_services
from tests.conftest import restore_roles, wait_for
from tests.core.tamper import tamper
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db

ACCOUNT = "004-123-456789012"


def _new_entries(since: int):
    return list(AuditEntry.objects.filter(id__gt=since).order_by("id"))


def _last_id() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _verify_fails(*args) -> str:
    """Run the command, expect exit 1, return what it printed."""
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit_trail", "--no-record", *args, stdout=out)
    assert exit_.value.code == 1
    return out.getvalue()


def _merchant_form(merchant, **changes):
    return {
        "legal_name": merchant.legal_name,
        "registration_number": merchant.registration_number,
        "country": "HK",
        "business_type": "private_company",
        "mcc": "5812",
        "expected_monthly_volume": "1000",
        "volume_currency": "HKD",
        "status": "lead",
        "risk_level": "medium",
        **changes,
    }


# ---------------------------------------------------------------------------
# One entry per change, with its actor and origin
# ---------------------------------------------------------------------------


def test_page_change_writes_one_entry_naming_user_address_and_browser(web, sales1):
    merchant = MerchantFactory(owner=sales1, legal_name="Old Name Limited")
    client = web(sales1)
    since = _last_id()
    response = client.post(
        reverse("merchants:edit", args=[merchant.pk]),
        _merchant_form(merchant, legal_name="New Name Limited"),
        REMOTE_ADDR="192.0.2.10",
        HTTP_USER_AGENT="Mozilla/5.0 AuditTest",
    )
    assert response.status_code == 302
    [entry] = _new_entries(since)
    assert entry.action == "update"
    assert (entry.model, entry.object_id, entry.merchant_id) == (
        "merchants.merchant",
        str(merchant.pk),
        merchant.pk,
    )
    assert entry.changes["legal_name"] == ["Old Name Limited", "New Name Limited"]
    assert entry.actor == sales1
    assert entry.actor_kind == "user"
    assert entry.origin == "web 192.0.2.10"
    assert entry.ip_address == "192.0.2.10"
    assert entry.user_agent == "Mozilla/5.0 AuditTest"
    assert "updated_at" not in entry.changes


def test_api_change_writes_one_entry_with_api_origin(api, sales1):
    merchant = MerchantFactory(owner=sales1, trading_name="Before")
    client = api(sales1)
    since = _last_id()
    response = client.patch(
        f"/api/v1/merchants/{merchant.pk}/",
        {"trading_name": "After"},
        format="json",
        REMOTE_ADDR="192.0.2.11",
    )
    assert response.status_code == 200, response.json()
    [entry] = _new_entries(since)
    assert entry.changes == {"trading_name": ["Before", "After"]}
    assert entry.actor == sales1
    assert entry.origin == "api 192.0.2.11"


def test_admin_change_writes_one_entry_with_admin_origin(client, admin1):
    from tests.conftest import sign_in_verified

    admin1.is_superuser = True  # the admin site's team form needs change_team
    admin1.save()
    team = Team.objects.create(name="Kowloon", group=_group("Kowloon team"))
    sign_in_verified(client, admin1)
    since = _last_id()
    response = client.post(
        reverse("admin:core_team_change", args=[team.pk]),
        {"name": "Kowloon East", "group": team.group_id, "manager": ""},
        REMOTE_ADDR="192.0.2.12",
    )
    assert response.status_code == 302, response.content[:2000]
    [entry] = _new_entries(since)
    assert (entry.model, entry.action) == ("core.team", "update")
    assert entry.changes == {"name": ["Kowloon", "Kowloon East"]}
    assert entry.actor == admin1
    assert entry.origin == "admin 192.0.2.12"


def _group(name):
    from django.contrib.auth.models import Group

    return Group.objects.create(name=name)


def test_celery_task_change_names_the_requesting_user_and_the_task(admin1, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    since = _last_id()
    tasks.merchant_transfer_owner.apply(
        kwargs={
            "merchant_ids": [merchant.pk],
            "new_owner_id": sales2.pk,
            "actor_id": admin1.pk,
            "reason": "handover",
        }
    ).get()
    entries = _new_entries(since)
    [update] = [e for e in entries if e.model == "merchants.merchant" and e.action == "update"]
    assert update.changes["owner"] == [
        f"{sales1} (#{sales1.pk})",
        f"{sales2} (#{sales2.pk})",
    ]
    assert update.reason == "handover"
    # The owner's object permissions move with the merchant: those are grants
    # and revocations, each its own entry, from the same actor and task.
    others = [e for e in entries if e is not update]
    assert others
    assert {e.action for e in others} <= {"permission_granted", "permission_revoked"}
    for entry in entries:
        assert entry.actor == admin1
        assert entry.origin == "task merchants.merchant_transfer_owner"
        assert entry.merchant_id == merchant.pk


def test_management_command_change_names_the_system_and_the_command(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "name,aliases,country,source\nIvan Sanctioned,,RU,OFAC test\n", encoding="utf-8"
    )
    since = _last_id()
    call_command("load_screening_list", str(path))
    entries = [e for e in _new_entries(since) if e.model != "core.user"]
    [entry] = entries
    assert (entry.model, entry.action) == ("onboarding.screeningentry", "create")
    assert entry.changes["name"] == [None, "Ivan Sanctioned"]
    assert entry.actor.username == "system"
    assert entry.actor_kind == "system"
    assert entry.origin == "command load_screening_list"


def test_rolled_back_change_leaves_no_entry(sales1):
    merchant = MerchantFactory(owner=sales1)
    since = _last_id()

    def change_then_fail():
        with transaction.atomic():
            merchant.legal_name = "Never Happened Limited"
            merchant.save()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert _new_entries(since) == []


def test_sign_ins_and_failures_are_on_the_trail(client, sales1):
    since = _last_id()
    client.post(
        reverse("core:login"),
        {"username": "sales1", "password": "wrong"},
        REMOTE_ADDR="192.0.2.13",
    )
    [failed] = [e for e in _new_entries(since) if e.action == "sign_in_failed"]
    assert failed.success is False
    assert failed.object_label == "sales1"
    assert failed.model == "core.user"
    assert failed.ip_address == "192.0.2.13"
    assert AuthEvent.objects.filter(kind="sign_in_failed").count() == 1


def test_permission_grant_is_an_entry(sales1, sales2):
    from guardian.shortcuts import assign_perm

    merchant = MerchantFactory(owner=sales1)
    since = _last_id()
    assign_perm("merchants.view_merchant", sales2, merchant)
    [entry] = _new_entries(since)
    assert entry.action == "permission_granted"
    assert (entry.model, entry.object_id, entry.merchant_id) == (
        "merchants.merchant",
        str(merchant.pk),
        merchant.pk,
    )
    assert entry.changes == {"permission": [None, "view_merchant"], "user": [None, str(sales2)]}


def test_child_records_are_filed_under_their_merchant(sales1):
    merchant = MerchantFactory(owner=sales1)
    since = _last_id()
    account = _account(merchant)
    [entry] = _new_entries(since)
    assert (entry.model, entry.object_id) == ("merchants.bankaccount", str(account.pk))
    assert entry.merchant_id == merchant.pk
    # a foreign key reads as the record's name and id, not a bare number
    assert entry.changes["merchant"] == [None, f"{merchant} (#{merchant.pk})"]


# ---------------------------------------------------------------------------
# Secrets stay masked
# ---------------------------------------------------------------------------


def _account(merchant, number=ACCOUNT):
    return merchant_services.bank_account_create(
        actor=merchant.owner,
        merchant=merchant,
        account_holder="Holder",
        bank_name="HSBC",
        country="HK",
        currency="HKD",
        account_number=number,
    )


def test_encrypted_and_hashed_fields_are_masked_in_entries_and_exports(sales1):
    merchant = MerchantFactory(owner=sales1)
    account = _account(merchant)
    trail.seal()
    entries = list(AuditEntry.objects.filter(model="merchants.bankaccount"))
    assert entries
    created = next(e for e in entries if e.action == "create")
    assert created.changes["account_number"] == [None, trail.MASK]
    assert created.changes["account_hash"] == [None, trail.MASK]
    assert created.changes["account_number_last4"] == [None, "9012"]
    digits = ACCOUNT.replace("-", "")
    csv_text = "".join(evidence.csv_lines(AuditEntry.objects.all()))
    bundle = evidence.build_bundle(AuditEntry.objects.all(), filters={}, generated_by="t")
    for text in (json.dumps([e.changes for e in entries]), csv_text, bundle.decode()):
        assert ACCOUNT not in text
        assert digits not in text
        assert account.account_hash not in text


# ---------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------


def _entries(n: int, sales1) -> list[Merchant]:
    return [MerchantFactory(owner=sales1) for _ in range(n)]


@pytest.fixture
def sealed_db(transactional_db):
    """A database whose writes commit, so that seals cover them (on
    PostgreSQL a seal takes only entries of transactions that have ended)."""
    restore_roles()  # an earlier transactional test's flush removed them
    return transactional_db


def _sealed_up() -> None:
    """Seal until nothing is pending: on PostgreSQL a seal waits for every
    older transaction on the server, another database's included."""

    def done() -> bool:
        trail.seal()
        return trail.covered(trail.sealed_below(), 2**62).count() == 0

    wait_for(done, timeout=120)


def test_every_entry_is_written_with_its_mac_and_key(sales1):
    since = _last_id()
    _entries(2, sales1)
    for entry in _new_entries(since):
        assert entry.mac == trail.entry_mac(entry)
        assert entry.key_id == auditkeys.current_id()
        assert entry.seq is None


def test_an_untouched_trail_verifies_intact_and_its_head_is_checkpointed(sealed_db):
    sales = User.objects.create(username="sales_x")
    _entries(3, sales)
    _sealed_up()
    result = services.audit_verify(record=False)
    assert result.intact, result.problems
    assert result.pending == 0
    assert result.entries == AuditEntry.objects.count()
    seals = list(AuditSeal.objects.order_by("seq").values_list("seq", flat=True))
    assert seals == list(range(1, len(seals) + 1))
    _name, point, valid = checkpoints.latest()
    assert valid
    assert (point["seal_seq"], point["total"]) == (seals[-1], result.total)


@pytest.mark.parametrize(
    ("column", "value"),
    [("object_label", "Innocent Limited"), ("actor_label", "someone_else"), ("changes", "{}")],
)
def test_an_entry_edited_in_the_database_is_named(sales1, column, value):
    since = _last_id()
    _entries(3, sales1)
    victim = _new_entries(since)[1]
    tamper(f"UPDATE core_auditentry SET {column} = %s WHERE id = %s", [value, victim.pk])  # noqa: S608
    assert f"entry {victim.pk}: MAC does not match" in _verify_fails()


def test_an_entry_rehashed_without_the_key_is_named(sales1):
    since = _last_id()
    _entries(2, sales1)
    victim = _new_entries(since)[0]
    victim.object_label = "Forged Limited"
    forged = hashlib.sha256(trail.canonical(trail.content(victim))).hexdigest()
    tamper(
        "UPDATE core_auditentry SET object_label = %s, mac = %s WHERE id = %s",
        ["Forged Limited", forged, victim.pk],
    )
    assert f"entry {victim.pk}: MAC does not match" in _verify_fails()


def test_an_entry_inserted_straight_into_the_table_is_named(sales1):
    since = _last_id()
    _entries(1, sales1)
    real = _new_entries(since)[0]
    real.pk = real.pk + 1000
    real.object_label = "Backdated approval"
    real.mac = "0" * 64
    real.save(force_insert=True)
    assert f"entry {real.pk}: MAC does not match" in _verify_fails()


def test_a_deleted_entry_is_named_by_its_seal(sealed_db):
    sales = User.objects.create(username="sales_x")
    _entries(4, sales)
    _sealed_up()
    victim = AuditEntry.objects.order_by("id")[2]
    tamper("DELETE FROM core_auditentry WHERE id = %s", [victim.pk])
    assert f"entries missing (deleted): #{victim.pk}" in _verify_fails()


def test_a_cut_tail_is_named_by_the_checkpoint(sealed_db):
    sales = User.objects.create(username="sales_x")
    _entries(2, sales)
    _sealed_up()
    services.audit_verify(record=False)  # checkpoint of the head
    head = AuditSeal.objects.order_by("-seq").first()
    tamper("DELETE FROM core_auditseal WHERE seq = %s", [head.seq])
    ids = list(trail.ids_of(head.entry_ids))
    tamper(
        f"DELETE FROM core_auditentry WHERE id IN ({', '.join(['%s'] * len(ids))})",  # noqa: S608
        ids,
    )
    out = _verify_fails()
    # The command's own sealer may have chained a newer entry as a new seal
    # of the same number: either way the checkpoint names the head it saw.
    assert f"seal {head.seq}" in out
    assert "differs from checkpoint" in out or "are missing (truncated" in out


def test_an_emptied_trail_is_named_by_the_checkpoint(sealed_db):
    sales = User.objects.create(username="sales_x")
    _entries(2, sales)
    _sealed_up()
    services.audit_verify(record=False)
    tamper("DELETE FROM core_auditseal", [])
    tamper("DELETE FROM core_auditentry", [])
    out = _verify_fails()
    assert "are missing (truncated, deleted or emptied)" in out


def test_verify_command_reports_intact_and_records_the_result(sales1, capsys):
    _entries(2, sales1)
    call_command("verify_audit_trail")
    out = capsys.readouterr().out
    assert "intact:" in out
    last = trail.last_verification()
    assert last is not None
    assert last.success
    assert last.changes["intact"] == [None, True]
    assert last.actor.username == "system"


def test_bundle_verifies_offline_and_a_changed_byte_is_caught(sales1, tmp_path, capsys):
    _entries(3, sales1)
    raw = evidence.build_bundle(AuditEntry.objects.all(), filters={}, generated_by="test")
    good = tmp_path / "good.json"
    good.write_bytes(raw)
    call_command("verify_audit_trail", "--bundle", str(good))
    assert "Signature: valid" in capsys.readouterr().out
    data = json.loads(raw)
    data["entries"][0]["object_label"] = "Rewritten"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SystemExit):
        call_command("verify_audit_trail", "--bundle", str(bad))
    assert "Signature: INVALID" in capsys.readouterr().out


def test_archive_moves_old_seals_to_a_file_and_the_chain_still_verifies(
    sealed_db, tmp_path, settings, capsys
):
    sales = User.objects.create(username="sales_x")
    _entries(3, sales)
    _sealed_up()
    services.audit_verify(record=False)
    archived_ids = [pk for row in AuditSeal.objects.all() for pk in trail.ids_of(row.entry_ids)]
    settings.AUDIT_RETENTION_DAYS = 0  # everything sealed so far is "old"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            trail_guards.install(cursor, retention_days=0)
    try:
        out_file = tmp_path / "archive.json"
        call_command("archive_audit_trail", "--output", str(out_file))
        assert "archived to" in capsys.readouterr().out
        assert not AuditEntry.objects.filter(pk__in=archived_ids).exists()
        result = services.audit_verify(record=False)
        assert result.intact, result.problems
        archive = AuditEntry.objects.get(action="archive")
        assert archive.changes["entries"][1] >= len(archived_ids)
        check = evidence.verify_bundle(out_file.read_bytes())
        assert check.ok, check.problems
        assert check.seals >= 1
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                trail_guards.install(cursor, retention_days=2557)


def test_a_forged_archive_entry_is_named(sales1):
    _entries(1, sales1)
    entry = trail.new_entry(
        action=trail.Action.ARCHIVE,
        model="core.auditentry",
        object_label="audit trail",
        changes={"through_seal": [None, 10**6], "through_high": [None, 10**12]},
    )
    entry.pk, entry.key_id, entry.mac = 10**6, auditkeys.current_id(), "f" * 64
    entry.save(force_insert=True)
    assert f"entry {entry.pk} (archive) is not authentic" in _verify_fails()


def test_archive_refuses_to_overwrite_and_archives_nothing_young(sales1, tmp_path, capsys):
    _entries(1, sales1)
    out_file = tmp_path / "a.json"
    call_command("archive_audit_trail", "--output", str(out_file))
    assert "Nothing older than" in capsys.readouterr().out
    assert not out_file.exists()
    out_file.write_text("x")
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="never overwritten"):
        call_command("archive_audit_trail", "--output", str(out_file))


def test_the_admin_offers_no_way_to_change_an_entry(client, admin1, sales1):
    from tests.conftest import sign_in_verified

    admin1.is_superuser = True
    admin1.save()
    MerchantFactory(owner=sales1)
    entry = AuditEntry.objects.first()
    sign_in_verified(client, admin1)
    change = client.get(reverse("admin:core_auditentry_change", args=[entry.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    delete = client.post(reverse("admin:core_auditentry_delete", args=[entry.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    add = client.get(reverse("admin:core_auditentry_add"))
    assert add.status_code == 403


def test_a_role_given_to_a_user_names_the_groups_before_and_after(sales2):
    from django.contrib.auth.models import Group

    since = _last_id()
    sales2.groups.add(Group.objects.get(name="compliance"))
    [entry] = _new_entries(since)
    assert (entry.model, entry.object_id, entry.action) == ("core.user", str(sales2.pk), "update")
    assert entry.changes == {"groups": ["sales", "compliance, sales"]}


def test_a_reveal_of_a_masked_value_is_an_entry_without_the_value(sales1, compliance1):
    merchant = MerchantFactory(owner=sales1)
    account = _account(merchant)
    since = _last_id()
    clear = merchant_services.sensitive_reveal(
        actor=compliance1, record=account, ip_address="192.0.2.14"
    )
    [entry] = _new_entries(since)
    assert entry.action == "reveal"
    assert (entry.model, entry.object_id) == ("merchants.bankaccount", str(account.pk))
    assert entry.merchant_id == merchant.pk
    assert entry.actor == compliance1
    assert entry.changes == {"field": [None, "account_number"]}
    assert clear.replace("-", "") not in json.dumps(entry.changes)


def test_an_explicit_entry_during_a_request_names_the_signed_in_user(rf, compliance1):
    from simple_history.models import HistoricalRecords

    request = rf.get("/audit/")
    request.user = compliance1
    HistoricalRecords.context.request = request
    try:
        entry = trail.append(action="export", model="core.auditentry", object_label="CSV")
    finally:
        del HistoricalRecords.context.request
    assert entry.actor == compliance1
    assert entry.actor_kind == "user"
