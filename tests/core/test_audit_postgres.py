"""The audit trail on PostgreSQL, attacked the two ways someone with the database can.

- As the application's role (LOGIN, not superuser, not the tables' owner, with
  the grants the README gives it): the guard triggers of ``core.trail_guards``
  refuse every UPDATE and every young DELETE of entries and seals, and the
  role can neither TRUNCATE nor switch a trigger off. What it can still do
  (insert an entry or seal of its own making, edit a history row) the
  verification names.
- As a superuser with every trigger off (``session_replication_role =
  replica``): each attack succeeds in the database and ``verify_audit_trail``
  exits 1 naming the entry, seal, checkpoint or record. The MACs need a key
  the database does not hold; the checkpoints live outside it.

The attacks run on connections of their own (psycopg, autocommit) against
committed data, so the tests are transactional. A seal covers only entries
of transactions older than the oldest one still running *anywhere on the
server* (``pg_snapshot_xmin``), so :func:`_seal_everything` waits, within a
bound, for another database's long transaction to end. The triggers exist
on PostgreSQL only; these tests skip on SQLite.
"""

import hashlib
import io
import json
import os
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from psycopg import errors, sql

from core import checkpoints, evidence, services, trail, trail_guards
from core.models import AuditEntry, AuditSeal
from merchants.models import Merchant
from merchants.services import merchants as merchant_services
from settlements.models import SettlementRun, StatementLine, Transaction
from settlements.services import ingestion, runs
from tests.conftest import restore_roles
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory
from tests.factories.settlements import TransactionItemFactory, TransactionSourceFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Action = AuditEntry.Action
APP_PASSWORD = "app-role-test-password"  # a throwaway role of this test run
# Every column of an entry, in the table's terms, for copying one by SQL.
ENTRY_COLUMNS = [f.column for f in AuditEntry._meta.concrete_fields if f.column != "id"]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the guard triggers exist on PostgreSQL only; set DATABASE_URL to run")


@pytest.fixture
def roles(transactional_db):
    """The role groups' permissions, which an earlier transactional test's
    flush removed (the finance role's, for the run services)."""
    restore_roles()


# ---------------------------------------------------------------------------
# Connections: the application's role, and a superuser with triggers off
# ---------------------------------------------------------------------------


def _connect(*, user: str | None = None, password: str | None = None) -> psycopg.Connection:
    """A connection of its own to the test database (the same server and name
    Django uses), as ``user`` or as Django's own (superuser) account."""
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=user or s["USER"],
        password=(password if user else s["PASSWORD"]) or None,
        autocommit=True,
    )


class Session:
    """One database session with ``run`` returning the rowcount (or rows)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def run(self, statement, params=()) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.rowcount

    def rows(self, statement, params=()) -> list[tuple]:
        with self.conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()

    def refused(self, statement, params=(), *, error=errors.IntegrityConstraintViolation, match):
        """The statement fails as ``error`` with a message containing ``match``
        (or one of several, where PostgreSQL versions word it differently)."""
        with pytest.raises(error) as caught:
            self.run(statement, params)
        options = (match,) if isinstance(match, str) else match
        assert any(m in str(caught.value) for m in options), str(caught.value)


@pytest.fixture
def app_db():
    """A session as a login role that is neither superuser nor the tables' owner,
    granted what the README grants the application; dropped afterwards."""
    name = f"paycrm_app_test_{os.getpid()}"  # roles are per server: one per test process
    role = sql.Identifier(name)
    with _connect() as admin:
        admin.execute(
            sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                "PASSWORD {}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            ).format(role, sql.Literal(APP_PASSWORD))
        )
        admin.execute(
            sql.SQL(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
            ).format(role)
        )
        admin.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role)
        )
    conn = _connect(user=name, password=APP_PASSWORD)
    try:
        session = Session(conn)
        assert session.rows("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [
            (False,)
        ]
        yield session
    finally:
        conn.close()
        with _connect() as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))  # its grants here
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


@pytest.fixture
def intruder():
    """A superuser session with every trigger off (the setting dies with the session)."""
    conn = _connect()
    try:
        session = Session(conn)
        session.run("SET session_replication_role = replica")
        yield session
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _unsealed() -> int:
    return AuditEntry.objects.filter(seq__isnull=True, txid__gte=trail.sealed_below()).count()


def _seal_everything(timeout: float = 180.0) -> None:
    """Seal until no entry is left over. The sealer takes only transactions
    older than the oldest one still running on the whole server, so a long
    writer in another database (a benchmark, a migration) holds it back."""
    deadline = time.monotonic() + timeout
    while True:
        trail.seal()
        left = _unsealed()
        if not left:
            return
        if time.monotonic() > deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid, datname, backend_xid::text, state, xact_start "
                    "FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                    "AND pid <> pg_backend_pid()"
                )
                blockers = cursor.fetchall()
            pytest.fail(f"{left} entries stay unsealed; transactions running: {blockers}")
        time.sleep(0.25)


def _verify(*args: str) -> str:
    """``verify_audit_trail``; expect intact (exit 0), return what it printed."""
    out = io.StringIO()
    call_command("verify_audit_trail", *args, stdout=out)
    return out.getvalue()


def _verify_fails(*args: str) -> str:
    """``verify_audit_trail``; expect exit 1, return what it printed."""
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit_trail", *args, stdout=out)
    assert exit_.value.code == 1, out.getvalue()
    return out.getvalue()


def _checkpointed() -> tuple[str, dict]:
    """Everything sealed and verified once: a signed checkpoint of the head exists.
    Then the verification's own entry is sealed too, beyond the checkpoint."""
    _seal_everything()
    assert "intact:" in _verify()
    _seal_everything()
    name, point, valid = checkpoints.latest()
    assert valid
    return name, point


def _head() -> AuditSeal:
    return AuditSeal.objects.order_by("-seq").first()


def _some_changes(owner, count: int = 3) -> list[Merchant]:
    """Committed changes in separate transactions, so that there are several seals."""
    merchants = []
    for n in range(count):
        merchant = MerchantFactory(owner=owner)
        merchants.append(
            merchant_services.merchant_update(
                merchant=merchant, actor=owner, reason="rename", trading_name=f"Renamed {n}"
            )
        )
        _seal_everything()
    return merchants


def _copy_entry(session: Session, source: AuditEntry, *, label: str, mac: str, txid=True) -> int:
    """Insert a copy of ``source`` under a new id with another label and MAC."""
    columns = [c for c in ENTRY_COLUMNS if txid or c != "txid"]
    replaced = {"object_label": sql.Literal(label), "mac": sql.Literal(mac)}
    chosen = [replaced.get(c, sql.Identifier(c)) for c in columns]
    [(pk,)] = session.rows(
        sql.SQL(
            "INSERT INTO core_auditentry ({}) SELECT {} FROM core_auditentry WHERE id = {} "
            "RETURNING id"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(chosen),
            sql.Literal(source.pk),
        )
    )
    return pk


def _forged_archive_values(covering: AuditSeal | None) -> dict:
    """What a forger would write into an archive entry to cover everything."""
    return {
        "through_seal": [None, (covering.seq if covering else 0) + 10**6],
        "through_high": [None, 2**62],
        "through_mac": [None, "f" * 64],
        "total": [None, 0],
        "entries": [None, AuditEntry.objects.count()],
        "file": [None, "audit-archive-forged.json"],
    }


def _insert_forged_archive(session: Session) -> int:
    """An ``archive`` entry, complete but for a MAC made without the key."""
    entry = trail.new_entry(
        action=Action.ARCHIVE,
        model="core.auditentry",
        object_label="audit trail",
        changes=_forged_archive_values(_head()),
        reason="retention 2557 days",
        actor=None,
    )
    [(pk,)] = session.rows(
        "INSERT INTO core_auditentry (created_at, actor_label, actor_kind, origin, user_agent, "
        "action, success, model, object_id, object_label, changes, reason, row_model, row_ids, "
        "row_digest, key_id, mac, prev_hash, hash) "
        "VALUES (now(), '', 'system', 'command archive_audit_trail', '', %s, true, %s, '', %s, "
        "%s, %s, '', '[]', '', %s, %s, '', '') RETURNING id",
        [
            entry.action,
            entry.model,
            entry.object_label,
            json.dumps(entry.changes),
            entry.reason,
            AuditEntry.objects.order_by("-id").values_list("key_id", flat=True).first(),
            hashlib.sha256(trail.canonical(trail.content(entry))).hexdigest(),
        ],
    )
    return pk


def _sha256_seal(row: AuditSeal) -> str:
    """The seal MAC a forger without the key can compute: a plain SHA-256."""
    return hashlib.sha256(b"seal/2\n" + trail.canonical(trail.seal_content(row))).hexdigest()


# ---------------------------------------------------------------------------
# Fixtures: real activity
# ---------------------------------------------------------------------------


@pytest.fixture
def ledger(finance1, admin1):
    """An active merchant and five transactions ingested as one batch."""
    merchant = MerchantFactory(status=Merchant.Status.ONBOARDING)
    merchant = merchant_services.merchant_activate(merchant=merchant, actor=admin1, reason="kyc")
    source = TransactionSourceFactory(code="acme-pay")
    items = [TransactionItemFactory(merchant=merchant.pk) for _ in range(5)]
    report = ingestion.transactions_ingest(actor=finance1, source=source, items=items)
    assert report.created == 5
    batch = AuditEntry.objects.get(row_model="settlements.transaction", reason="ingest acme-pay")
    return merchant, sorted(report.created_ids), batch


@pytest.fixture
def approved_run(roles, finance1, finance2):
    """The hand-checked October run (tests/settlements/runs_setup.py), approved."""
    world = build_world(actor=finance1)
    run = runs.settlement_run_create(
        actor=finance1, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    runs.settlement_run_calculate(actor=finance1, run=run)  # eager, after commit
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.CALCULATED, run.calculation_error
    runs.settlement_run_submit(actor=finance1, run=run)
    runs.settlement_run_approve(actor=finance2, run=run)
    run.refresh_from_db()
    assert run.status == SettlementRun.Status.APPROVED
    return world, run


# ---------------------------------------------------------------------------
# An untouched trail
# ---------------------------------------------------------------------------


def test_an_untouched_trail_after_real_activity_verifies_intact(sales1, ledger, approved_run):
    # given: merchants created and changed, a ledger batch, an approved run
    merchant, _ids, _batch = ledger
    merchant_services.merchant_update(
        merchant=merchant, actor=merchant.owner, reason="rename", trading_name="New Name"
    )
    _some_changes(sales1, count=2)
    _seal_everything()
    # when
    plain = _verify()
    with_records = _verify("--records")
    # then
    assert "intact:" in plain
    assert "records" not in plain.splitlines()[-1]
    assert "intact:" in with_records
    assert "records" in with_records.splitlines()[-1]
    _name, point, valid = checkpoints.latest()
    assert valid
    assert point["seal_seq"] >= _head().seq - 1  # the last verification's own seal may follow


# ---------------------------------------------------------------------------
# The application's role: the guards refuse, verify names what gets through
# ---------------------------------------------------------------------------


def test_the_app_role_can_neither_change_nor_delete_entries_and_seals(app_db, sales1):
    # given
    _some_changes(sales1, count=2)
    entry = AuditEntry.objects.order_by("id").first()
    seal = _head()
    # when / then
    app_db.refused(
        "UPDATE core_auditentry SET object_label = 'forged' WHERE id = %s",
        [entry.pk],
        match=f"audit entry {entry.pk} cannot be changed: the audit trail is append-only",
    )
    app_db.refused(
        "UPDATE core_auditentry SET mac = repeat('0', 64)",
        match="cannot be changed: the audit trail is append-only",
    )
    app_db.refused(
        "DELETE FROM core_auditentry WHERE id = %s",
        [entry.pk],
        match=f"audit entry {entry.pk} is younger than the retention period",
    )
    app_db.refused(
        "UPDATE core_auditseal SET digest = repeat('0', 64) WHERE seq = %s",
        [seal.seq],
        match=f"audit seal {seal.seq} cannot be changed",
    )
    app_db.refused(
        "DELETE FROM core_auditseal WHERE seq = %s",
        [seal.seq],
        match=f"audit seal {seal.seq} is younger than the retention period",
    )
    assert AuditEntry.objects.get(pk=entry.pk).mac == entry.mac
    assert "intact:" in _verify()


@pytest.mark.parametrize(
    ("statement", "error", "match"),
    [
        ("TRUNCATE core_auditentry", errors.InsufficientPrivilege, "permission denied"),
        ("TRUNCATE core_auditseal", errors.InsufficientPrivilege, "permission denied"),
        (
            "ALTER TABLE core_auditentry DISABLE TRIGGER core_auditentry_guard",
            errors.InsufficientPrivilege,
            "must be owner of table core_auditentry",
        ),
        (
            "ALTER TABLE core_auditseal DISABLE TRIGGER ALL",
            errors.InsufficientPrivilege,
            "must be owner of table core_auditseal",
        ),
        (
            "DROP TRIGGER core_auditentry_insert_guard ON core_auditentry",
            errors.InsufficientPrivilege,
            "must be owner of",
        ),
        (
            "CREATE OR REPLACE FUNCTION core_auditentry_guard() RETURNS trigger "
            "AS $$ BEGIN RETURN OLD; END $$ LANGUAGE plpgsql",
            errors.InsufficientPrivilege,
            # PostgreSQL 15 takes CREATE on public from PUBLIC; before, ownership decides
            ("permission denied for schema public", "must be owner of function"),
        ),
        (
            "SET session_replication_role = replica",
            errors.InsufficientPrivilege,
            'permission denied to set parameter "session_replication_role"',
        ),
    ],
    ids=[
        "truncate-entries",
        "truncate-seals",
        "disable-entry-guard",
        "disable-seal-guards",
        "drop-insert-guard",
        "replace-guard-function",
        "replica-mode",
    ],
)
def test_the_app_role_can_neither_empty_the_trail_nor_switch_the_guards_off(
    app_db, sales1, statement, error, match
):
    # given
    _some_changes(sales1, count=1)
    entries, seals = AuditEntry.objects.count(), AuditSeal.objects.count()
    # when / then
    app_db.refused(statement, error=error, match=match)
    assert (AuditEntry.objects.count(), AuditSeal.objects.count()) == (entries, seals)
    with _connect() as admin:
        assert admin.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'core_audit%' AND tgenabled = 'O'"
        ).fetchone() == (4,)


def test_the_app_roles_forged_archive_wipe_is_refused_and_the_forgery_named(app_db, sales1):
    # given
    _some_changes(sales1, count=2)
    _checkpointed()
    entries, seals = AuditEntry.objects.count(), AuditSeal.objects.count()
    # when: an archive entry that claims to cover everything, then the wipe
    forged = _insert_forged_archive(app_db)
    app_db.refused(
        "DELETE FROM core_auditentry WHERE id <> %s",
        [forged],
        match="is younger than the retention period",
    )
    app_db.refused("DELETE FROM core_auditseal", match="is younger than the retention period")
    # then: nothing went, and the forged entry is named
    assert AuditEntry.objects.count() == entries + 1
    assert AuditSeal.objects.count() == seals
    out = _verify_fails()
    assert f"entry {forged} (archive) is not authentic: forged or altered" in out
    assert f"entry {forged}: MAC does not match: forged or altered" in out


def test_an_entry_the_app_role_inserts_is_accepted_by_the_database_and_named(app_db, sales1):
    # given
    _some_changes(sales1, count=1)
    real = AuditEntry.objects.filter(action=Action.CREATE).order_by("id").first()
    # when: a plausible copy with a made-up MAC (the insert guard stamps its txid)
    forged = _copy_entry(
        app_db,
        real,
        label="Backdated approval",
        mac=hashlib.sha256(b"guess").hexdigest(),
        txid=False,
    )
    # then
    stored = AuditEntry.objects.get(pk=forged)
    assert stored.txid is not None
    assert stored.txid > real.txid
    assert f"entry {forged}: MAC does not match: forged or altered" in _verify_fails()


def test_the_app_role_cannot_give_an_entry_the_earlier_chains_columns(app_db, sales1):
    _some_changes(sales1, count=1)
    app_db.refused(
        "INSERT INTO core_auditentry (created_at, actor_label, actor_kind, origin, user_agent, "
        "action, success, model, object_id, object_label, changes, reason, row_model, row_ids, "
        "row_digest, key_id, mac, seq, prev_hash, hash) VALUES (now(), '', 'system', '', '', "
        "'update', true, 'merchants.merchant', '1', 'x', '{}', '', '', '[]', '', 'k', 'm', "
        "1, repeat('0', 64), repeat('a', 64))",
        match="audit entries are written in the keyed format, not the earlier chain",
    )
    app_db.refused(
        "INSERT INTO core_auditentry (created_at, actor_label, actor_kind, origin, user_agent, "
        "action, success, model, object_id, object_label, changes, reason, row_model, row_ids, "
        "row_digest, key_id, mac, prev_hash, hash) VALUES (now(), '', 'system', '', '', "
        "'update', true, 'merchants.merchant', '1', 'x', '{}', '', '', '[]', '', '', '', '', '')",
        match="an audit entry must arrive with its MAC and key id",
    )


def test_a_seal_the_app_role_inserts_is_named(app_db, sales1):
    # given
    _some_changes(sales1, count=2)
    head = _head()
    # when: a seal linked to the head that claims nothing, with a guessed MAC
    # (the insert guard makes it continue the chain: low < high <= the
    # oldest running transaction)
    forged = AuditSeal(
        seq=head.seq + 1, created_at=head.created_at, key_id=head.key_id, low=head.high,
        high=head.high + 1, entries=0, total=head.total, entry_ids=[],
        digest=trail.entries_digest([]), prev_mac=head.mac,
    )  # fmt: skip
    app_db.run(
        "INSERT INTO core_auditseal (seq, created_at, key_id, low, high, entries, total, "
        "entry_ids, digest, prev_mac, mac) VALUES (%s, %s, %s, %s, %s, 0, %s, '[]', %s, %s, %s)",
        [forged.seq, forged.created_at, forged.key_id, forged.low, forged.high, forged.total,
         forged.digest, forged.prev_mac, _sha256_seal(forged)],
    )  # fmt: skip
    # then
    assert f"seal {forged.seq}: MAC does not match: forged or altered" in _verify_fails()


def test_the_app_role_cannot_insert_a_seal_that_ends_beyond_the_running_transactions(
    app_db, sales1
):
    # given
    _some_changes(sales1, count=1)
    head = _head()
    # when / then: a seal reaching past every running transaction would leave
    # every later entry inside a range no sealer may continue
    app_db.refused(
        "INSERT INTO core_auditseal (seq, created_at, key_id, low, high, entries, total, "
        "entry_ids, digest, prev_mac, mac) "
        "VALUES (%s, now(), 'x', %s, 4611686018427387904, 0, %s, '[]', '', %s, repeat('0', 64))",
        [head.seq + 1, head.high, head.total, head.mac],
        match="does not continue the chain",
    )


def test_the_app_role_cannot_change_the_ledger_or_an_approved_run(app_db, ledger, approved_run):
    # given
    _merchant, ids, _batch = ledger
    _world, run = approved_run
    line = StatementLine.objects.filter(statement__run=run).order_by("id").first()
    # when / then
    app_db.refused(
        "UPDATE settlements_transaction SET amount = amount + 1 WHERE id = %s",
        [ids[0]],
        match=f"transaction {ids[0]} cannot be updated: the ledger is append-only",
    )
    app_db.refused(
        "DELETE FROM settlements_transaction WHERE id = %s",
        [ids[0]],
        match=f"transaction {ids[0]} cannot be deleted",
    )
    app_db.refused(
        "UPDATE settlements_statementline SET share = share + 1 WHERE id = %s",
        [line.pk],
        match=f"settlement run {run.pk} is approved and frozen",
    )
    _seal_everything()
    assert "intact:" in _verify("--records")


def test_history_rows_the_app_role_edits_or_deletes_are_named(app_db, ledger, sales1):
    # given
    merchant, _ids, _batch = ledger
    other = _some_changes(sales1, count=1)[0]
    edited = merchant.history.order_by("history_id").first()
    deleted = other.history.order_by("history_id").first()
    proofs = {
        row.history_id: AuditEntry.objects.get(
            row_model="merchants.historicalmerchant", row_first=row.history_id
        )
        for row in (edited, deleted)
    }
    # when: history tables have no guard; the role's grants reach them
    app_db.run(
        "UPDATE merchants_historicalmerchant SET legal_name = 'Somebody Else Ltd' "
        "WHERE history_id = %s",
        [edited.history_id],
    )
    app_db.run(
        "DELETE FROM merchants_historicalmerchant WHERE history_id = %s", [deleted.history_id]
    )
    app_db.run("UPDATE merchants_merchant SET risk_level = 'high' WHERE id = %s", [merchant.pk])
    # then
    out = _verify_fails("--records")
    assert (
        f"entry {proofs[edited.history_id].pk}: merchants.historicalmerchant "
        f"#{edited.history_id} changed in the database since the entry proved it"
    ) in out
    assert (
        f"entry {proofs[deleted.history_id].pk}: merchants.historicalmerchant "
        f"#{deleted.history_id} deleted (1 of 1 rows it proves)"
    ) in out
    assert f"merchants.merchant #{merchant.pk} changed in the database: risk_level is 'high'" in out


# ---------------------------------------------------------------------------
# A superuser with every trigger off: each attack succeeds, verify names it
# ---------------------------------------------------------------------------


def test_a_forged_archive_wipe_by_a_superuser_is_named(intruder, sales1):
    # given
    _some_changes(sales1, count=3)
    name, point = _checkpointed()
    # when: a forged archive entry "covering" everything, then everything else goes
    forged = _insert_forged_archive(intruder)
    assert intruder.run("DELETE FROM core_auditentry WHERE id <> %s", [forged]) > 0
    assert intruder.run("DELETE FROM core_auditseal") == point["seal_seq"] + 1
    # then: the forgery, and what the checkpoint says is missing
    out = _verify_fails()
    assert f"entry {forged} (archive) is not authentic: forged or altered" in out
    assert (
        f"the chain ends at seal 0 (0 entries) but checkpoint {name} of {point['created_at']} "
        f"recorded seal {point['seal_seq']} with {point['total']} entries: "
        f"{point['total']} entries and seals 1 to {point['seal_seq']} are missing "
        "(truncated, deleted or emptied)"
    ) in out


@pytest.mark.parametrize("txid", [True, False], ids=["its-txid-copied", "no-txid"])
def test_an_entry_a_superuser_inserts_straight_into_the_table_is_named(intruder, sales1, txid):
    # given
    _some_changes(sales1, count=2)
    real = AuditEntry.objects.filter(action=Action.CREATE, model="merchants.merchant").first()
    # when: a copy of a real entry under a new id, naming something else
    forged = _copy_entry(
        intruder, real, label="Backdated approval",
        mac=hashlib.sha256(b"no key").hexdigest(), txid=txid,
    )  # fmt: skip
    # then
    out = _verify_fails()
    if txid:  # inside a sealed range: its seal never listed it, its MAC is wrong
        seal = trail.seal_of(AuditEntry.objects.get(pk=forged))
        assert f"seal {seal.seq}: entries not sealed in it (inserted later): #{forged}" in out
        assert f"entry {forged}: MAC does not match: forged or altered" in out
    else:  # no transaction stamped: outside every seal
        assert f"1 entries are outside every seal (inserted around the chain): #{forged}" in out


def test_an_entry_edited_and_rehashed_up_to_the_head_is_named(intruder, sales1):
    # given: several seals, a checkpoint of the head
    _some_changes(sales1, count=3)
    name, point = _checkpointed()
    seals = list(AuditSeal.objects.order_by("seq"))
    target_seal = seals[1]
    victim = AuditEntry.objects.get(pk=next(trail.ids_of(target_seal.entry_ids)))
    # when: the entry edited, its "MAC" and every seal from it to the head recomputed
    victim.object_label = "Innocent Limited"
    victim.mac = hashlib.sha256(b"entry/2\n" + trail.canonical(trail.content(victim))).hexdigest()
    intruder.run(
        "UPDATE core_auditentry SET object_label = %s, mac = %s WHERE id = %s",
        [victim.object_label, victim.mac, victim.pk],
    )
    prev_mac = seals[0].mac
    for row in seals[1:]:
        pairs = trail.covered(row.low, row.high).values_list("id", "mac")
        row.digest, row.prev_mac = trail.entries_digest(pairs), prev_mac
        row.mac = _sha256_seal(row)
        intruder.run(
            "UPDATE core_auditseal SET digest = %s, prev_mac = %s, mac = %s WHERE seq = %s",
            [row.digest, row.prev_mac, row.mac, row.seq],
        )
        prev_mac = row.mac
    # then: the links hold, the keyed MACs and the checkpoint do not
    out = _verify_fails()
    assert f"entry {victim.pk}: MAC does not match: forged or altered" in out
    for row in seals[1:]:
        assert f"seal {row.seq}: MAC does not match: forged or altered" in out
    assert "link to the previous seal broken" not in out
    assert "digest of its entries does not match" not in out
    assert (
        f"seal {point['seal_seq']} differs from checkpoint {name}: the chain was rewritten" in out
    )


def test_the_last_entries_deleted_with_their_seals_are_named_by_the_checkpoint(intruder, sales1):
    # given
    _some_changes(sales1, count=3)
    name, point = _checkpointed()
    head = _head()
    cut = [row for row in AuditSeal.objects.order_by("seq") if row.seq >= point["seal_seq"]]
    assert [row.seq for row in cut] == list(range(point["seal_seq"], head.seq + 1))
    ids = [pk for row in cut for pk in trail.ids_of(row.entry_ids)]
    left = AuditSeal.objects.get(seq=point["seal_seq"] - 1)
    # when: the last entries and the seals that list them, removed together
    assert intruder.run("DELETE FROM core_auditentry WHERE id = ANY(%s)", [ids]) == len(ids)
    assert intruder.run("DELETE FROM core_auditseal WHERE seq >= %s", [cut[0].seq]) == len(cut)
    # then
    out = _verify_fails()
    assert (
        f"the chain ends at seal {left.seq} ({left.total} entries) but checkpoint {name} "
        f"of {point['created_at']} recorded seal {point['seal_seq']} with {point['total']} "
        f"entries: {point['total'] - left.total} entries and seals {point['seal_seq']} to "
        f"{point['seal_seq']} are missing (truncated, deleted or emptied)"
    ) in out


def test_the_last_entries_deleted_under_their_seals_are_named_by_the_seals(intruder, sales1):
    # given
    _some_changes(sales1, count=2)
    _checkpointed()
    head = _head()
    seals = list(AuditSeal.objects.order_by("-seq")[:2])
    gone = {row.seq: list(trail.ids_of(row.entry_ids)) for row in seals}
    # when: the entries of the last two seals, the seals left in place
    ids = [pk for pks in gone.values() for pk in pks]
    assert intruder.run("DELETE FROM core_auditentry WHERE id = ANY(%s)", [ids]) == len(ids)
    # then
    out = _verify_fails()
    for seq, pks in gone.items():
        assert (
            f"seal {seq}: {len(pks)} entries missing (deleted): "
            + ", ".join(f"#{pk}" for pk in pks[:10])
        ) in out
    assert head.seq == max(gone)


def test_a_truncated_trail_is_named_by_the_checkpoint(intruder, sales1):
    # given
    _some_changes(sales1, count=2)
    name, point = _checkpointed()
    # when
    intruder.run("TRUNCATE core_auditentry, core_auditseal")
    assert not AuditEntry.objects.exists()
    # then
    out = _verify_fails()
    assert (
        f"the chain ends at seal 0 (0 entries) but checkpoint {name} of {point['created_at']} "
        f"recorded seal {point['seal_seq']} with {point['total']} entries: {point['total']} "
        f"entries and seals 1 to {point['seal_seq']} are missing (truncated, deleted or emptied)"
    ) in out


def test_a_changed_transaction_amount_is_named(intruder, ledger):
    # given
    _merchant, ids, batch = ledger
    _seal_everything()
    assert "intact:" in _verify("--records")
    # when
    assert (
        intruder.run(
            "UPDATE settlements_transaction SET amount = amount * 10 WHERE id = %s", [ids[2]]
        )
        == 1
    )
    # then: the batch's digest no longer matches; the plain check does not look at records
    assert Transaction.objects.get(pk=ids[2]).amount == Decimal("1000.00")
    out = _verify_fails("--records")
    assert (
        f"entry {batch.pk}: settlements.transaction #{ids[0]} to #{ids[-1]} (5 rows) "
        "changed in the database since the entry proved it"
    ) in out
    assert "intact:" in _verify()


def test_a_transaction_inserted_around_the_service_is_named(intruder, ledger):
    # given
    _merchant, ids, _batch = ledger
    # when: a copy of a ledger row under a new id, no entry proving it
    columns = [f.column for f in Transaction._meta.concrete_fields if f.column != "id"]
    [(pk,)] = intruder.rows(
        sql.SQL(
            "INSERT INTO settlements_transaction ({}) SELECT {} FROM settlements_transaction "
            "WHERE id = {} RETURNING id"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(
                sql.Literal("by_hand") if c == "external_id" else sql.Identifier(c) for c in columns
            ),
            sql.Literal(ids[0]),
        )
    )
    # then
    out = _verify_fails("--records")
    assert (
        "1 ledger rows are on no trail entry (written around the service): "
        f"settlements.transaction #{pk}"
    ) in out


def test_a_changed_approved_statement_line_is_named(intruder, approved_run):
    # given
    world, run = approved_run
    line = StatementLine.objects.get(
        statement__run=run, statement__partner=world.sub, merchant=world.m1
    )
    assert line.share == Decimal("220.00")
    _seal_everything()
    # when
    assert (
        intruder.run("UPDATE settlements_statementline SET share = 2200 WHERE id = %s", [line.pk])
        == 1
    )
    # then
    out = _verify_fails("--records")
    assert (
        f"settlements.statementline #{line.pk} changed in the database: "
        "share is '2200.0000', recorded '220.0000'"
    ) in out


def test_a_changed_history_row_is_named(intruder, ledger):
    # given
    merchant, _ids, _batch = ledger
    history = merchant.history.order_by("-history_id").first()
    assert history.status == Merchant.Status.ACTIVE
    proof = AuditEntry.objects.get(
        row_model="merchants.historicalmerchant", row_first=history.history_id
    )
    _seal_everything()
    # when: the latest history row rewritten to agree with a rewritten merchant
    intruder.run(
        "UPDATE merchants_historicalmerchant SET status = 'offboarded' WHERE history_id = %s",
        [history.history_id],
    )
    intruder.run("UPDATE merchants_merchant SET status = 'offboarded' WHERE id = %s", [merchant.pk])
    # then: the current row matches its history, but the history row is not what was proved
    out = _verify_fails("--records")
    assert (
        f"entry {proof.pk}: merchants.historicalmerchant #{history.history_id} "
        "changed in the database since the entry proved it"
    ) in out
    assert f"merchants.merchant #{merchant.pk} changed in the database" not in out


# ---------------------------------------------------------------------------
# Many writers at once: one gapless chain
# ---------------------------------------------------------------------------

THREADS = 4
ROUNDS = 6


def test_parallel_writers_leave_one_gapless_chain_covering_every_entry_once():
    # given
    services.system_user()  # the command's actor, created beforehand: its entry is counted
    barrier = threading.Barrier(THREADS)
    errors_seen = []

    def write(index: int) -> None:
        try:
            owner = UserFactory(username=f"writer{index}", roles=["sales"])
            barrier.wait(timeout=10)
            for n in range(ROUNDS):
                # One transaction: a merchant (with its owner's grants) created and renamed.
                with transaction.atomic():
                    merchant = MerchantFactory(
                        owner=owner,
                        legal_name=f"Race {index}.{n} Limited",
                        registration_number=f"{30_000_000 + index * 1000 + n}",
                    )
                    merchant_services.merchant_update(
                        merchant=merchant, actor=owner, trading_name=f"Race {index}.{n} renamed"
                    )
                # and one on its own
                merchant_services.merchant_update(
                    merchant=merchant, actor=owner, reason="again", trading_name=f"Race {n}"
                )
        except Exception as exc:  # surfaced by the assertion below
            errors_seen.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    assert errors_seen == []
    assert not any(thread.is_alive() for thread in threads)
    _seal_everything()
    seals = list(AuditSeal.objects.order_by("seq"))
    assert [row.seq for row in seals] == list(range(1, len(seals) + 1))
    assert len(seals) > 1
    sealed = [pk for row in seals for pk in trail.ids_of(row.entry_ids)]
    all_ids = list(AuditEntry.objects.values_list("id", flat=True))
    assert len(sealed) == len(set(sealed))  # no entry in two seals
    assert sorted(sealed) == sorted(all_ids)  # and none in no seal
    assert len(all_ids) >= THREADS * ROUNDS * 3
    running = 0
    for previous, row in zip([None, *seals], seals, strict=False):
        running += row.entries
        assert row.total == running
        assert row.low == (previous.high if previous else 0)
        assert row.prev_mac == (previous.mac if previous else "")
    out = _verify()
    assert f"intact: {len(all_ids)} entries, {len(seals)} seals" in out


# ---------------------------------------------------------------------------
# Archiving: the guard lets an archive remove exactly what it covers
# ---------------------------------------------------------------------------


@pytest.fixture
def no_retention(settings, transactional_db):
    """Retention 0 days in the settings and compiled into the guards; put back after."""
    configured = settings.AUDIT_RETENTION_DAYS
    settings.AUDIT_RETENTION_DAYS = 0
    with connection.cursor() as cursor:
        trail_guards.install(cursor, retention_days=0)
    yield
    with connection.cursor() as cursor:
        trail_guards.install(cursor, retention_days=configured)


def test_an_archive_removes_exactly_what_it_covers_and_both_still_verify(
    no_retention, app_db, sales1, tmp_path
):
    # given
    _some_changes(sales1, count=3)
    _seal_everything()
    archived_seals = list(AuditSeal.objects.order_by("seq"))
    archived_ids = {pk for row in archived_seals for pk in trail.ids_of(row.entry_ids)}
    out_file = tmp_path / "audit-archive.json"
    # when
    out = io.StringIO()
    call_command("archive_audit_trail", "--output", str(out_file), stdout=out)
    # then: those entries and seals left the database, into the file
    assert f"and {len(archived_seals)} seals archived to {out_file}" in out.getvalue()
    assert not AuditEntry.objects.filter(pk__in=archived_ids).exists()
    assert not AuditSeal.objects.filter(seq__lte=archived_seals[-1].seq).exists()
    archive = AuditEntry.objects.get(action=Action.ARCHIVE)
    assert trail.recorded_values(archive)["through_seal"] == archived_seals[-1].seq
    # the guard refuses whatever the archive does not cover, old as it is
    _seal_everything()
    kept = AuditEntry.objects.order_by("id").first()
    app_db.refused(
        "DELETE FROM core_auditentry WHERE id = %s",
        [kept.pk],
        match=f"audit entry {kept.pk} cannot be deleted: no archive covers it",
    )
    kept_seal = AuditSeal.objects.order_by("seq").first()
    app_db.refused(
        "DELETE FROM core_auditseal WHERE seq = %s",
        [kept_seal.seq],
        match=f"audit seal {kept_seal.seq} cannot be deleted: no archive covers it",
    )
    # what is left verifies, continuing from the archived seal; so does the file
    assert "intact:" in _verify()
    assert "intact:" in _verify("--records")
    bundle = _verify("--bundle", str(out_file))
    assert "Signature: valid" in bundle
    assert f"intact: {len(archived_ids)} entries" in bundle
    check = evidence.verify_bundle(out_file.read_bytes())
    assert check.ok, check.problems
    assert check.seals == len(archived_seals)
