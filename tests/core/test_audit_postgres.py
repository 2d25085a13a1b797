"""The audit trail on PostgreSQL: the guard trigger, archiving, tampering, parallel writers.

The trigger (migration core/0007) refuses every UPDATE but the sealer's and
every DELETE but of archived entries; it exists on PostgreSQL only, so these
tests skip on SQLite. Refusals are provoked with raw SQL inside a savepoint,
so that each test can go on after its statement failed.
"""

import itertools
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from core import trail
from core.models import AuditEntry
from merchants.services import merchants as merchant_services
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.postgres]

Action = AuditEntry.Action


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the guard trigger exists on PostgreSQL only; set DATABASE_URL to run")


def _entries(count: int, *, prefix: str = "thing") -> list[AuditEntry]:
    return [
        trail.append(
            action=Action.UPDATE,
            model="merchants.merchant",
            object_id=n,
            object_label=f"{prefix} {n}",
            merchant_id=n,
            changes={"status": ["onboarding", "active"]},
            reason="test",
            actor=None,
        )
        for n in range(1, count + 1)
    ]


def _sql(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _refused(statement: str, params=(), *, match: str) -> None:
    """The statement fails with the trigger's error; the savepoint keeps the test going."""
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        _sql(statement, params)


def _stored(pk: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM core_auditentry WHERE id = %s", [pk])
        return cursor.fetchone()


@pytest.fixture
def untriggered():
    """Run raw SQL with the guard off, inside the test's transaction (rolled back after)."""

    def run(statement: str, params=()) -> int:
        _sql("ALTER TABLE core_auditentry DISABLE TRIGGER core_auditentry_guard")
        try:
            return _sql(statement, params)
        finally:
            _sql("ALTER TABLE core_auditentry ENABLE TRIGGER core_auditentry_guard")

    return run


# ---------------------------------------------------------------------------
# (a) the trigger refuses edits and deletions
# ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "assignment",
    [
        "object_label = 'forged'",
        "changes = '{}'::jsonb",
        "reason = 'other reason'",
        "actor_label = 'someone else'",
        "created_at = created_at - interval '1 day'",
        "merchant_id = 999",
        "success = false",
        "hash = repeat('0', 64)",
        "seq = seq + 1000",
        "prev_hash = repeat('f', 64)",
    ],
)
def test_the_trigger_refuses_any_update_of_a_sealed_entry(assignment):
    entry = _entries(1)[0]
    assert trail.seal() == 1
    before = _stored(entry.pk)

    _refused(
        f"UPDATE core_auditentry SET {assignment} WHERE id = %s",  # noqa: S608 (constants)
        [entry.pk],
        match=f"audit entry {entry.pk} cannot be changed: the audit trail is append-only",
    )

    assert _stored(entry.pk) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "assignment",
    [
        "object_label = 'forged'",
        'changes = \'{"status": ["onboarding", "closed"]}\'::jsonb',
        "reason = ''",
        "action = 'delete'",
        "created_at = now()",
        "object_id = '2'",
        # the sealer's columns together with a content column
        "seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64), object_label = 'forged'",
        # a number without a hash is not a seal
        "seq = 1",
    ],
)
def test_the_trigger_refuses_content_changes_to_an_unsealed_entry(assignment):
    entry = _entries(1)[0]
    before = _stored(entry.pk)

    _refused(
        f"UPDATE core_auditentry SET {assignment} WHERE id = %s",  # noqa: S608 (constants)
        [entry.pk],
        match="cannot be changed: the audit trail is append-only",
    )

    assert _stored(entry.pk) == before
    assert trail.seal() == 1  # still sealable as written
    assert trail.verify().intact


@pytest.mark.django_db
def test_the_trigger_refuses_deletes_of_sealed_and_unsealed_entries():
    sealed = _entries(1)[0]
    trail.seal()
    unsealed = trail.append(action=Action.EXPORT, model="settlements.transaction", actor=None)

    for entry in (sealed, unsealed):
        _refused(
            "DELETE FROM core_auditentry WHERE id = %s",
            [entry.pk],
            match=f"audit entry {entry.pk} cannot be deleted: only archived entries",
        )
    _refused("DELETE FROM core_auditentry", match="cannot be deleted")
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        AuditEntry.objects.filter(pk=sealed.pk).delete()

    assert AuditEntry.objects.count() == 2


# ---------------------------------------------------------------------------
# (b) the sealer's own update is allowed
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sealing_passes_the_trigger_and_the_chain_verifies():
    entries = _entries(5)
    assert AuditEntry.objects.filter(seq__isnull=True).count() == 5

    assert trail.seal() == 5
    more = _entries(2, prefix="later")
    assert trail.seal() == 2
    assert trail.seal() == 0

    stored = list(AuditEntry.objects.order_by("id"))
    assert [e.pk for e in stored] == [e.pk for e in entries + more]
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6, 7]
    assert stored[0].prev_hash == trail.GENESIS
    for previous, entry in itertools.pairwise(stored):
        assert entry.prev_hash == previous.hash
    result = trail.verify()
    assert result.intact, result.summary()
    assert (result.entries, result.pending, result.last_seq) == (7, 0, 7)
    assert result.last_hash == stored[-1].hash


# ---------------------------------------------------------------------------
# (c) archived entries may leave the trail, nothing after them
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_entries_covered_by_a_sealed_archive_entry_can_be_deleted():
    entries = _entries(5)
    trail.seal()
    for entry in entries:
        entry.refresh_from_db()
    through = entries[2]  # seq 3
    archive = trail.append(
        action=Action.ARCHIVE,
        model="core.auditentry",
        object_label="audit trail",
        changes={"through_seq": [None, through.seq], "last_hash": [None, through.hash]},
        actor=None,
    )
    # Not sealed yet: it covers nothing.
    _refused(
        "DELETE FROM core_auditentry WHERE id = %s", [entries[0].pk], match="cannot be deleted"
    )
    trail.seal()
    archive.refresh_from_db()
    assert archive.seq == 6

    assert _sql("DELETE FROM core_auditentry WHERE seq <= %s", [through.seq]) == 3
    for beyond in (entries[3], entries[4], archive):
        _refused(
            "DELETE FROM core_auditentry WHERE id = %s",
            [beyond.pk],
            match=f"audit entry {beyond.pk} cannot be deleted",
        )

    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == [4, 5, 6]
    result = trail.verify()  # the archive entry anchors what is left
    assert result.intact, result.summary()
    assert (result.first_seq, result.last_seq, result.entries) == (4, 6, 3)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sealed",
    [
        {"seq": 1, "prev_hash": "0" * 64, "hash": "a" * 64},
        {"hash": "a" * 64},
        {"prev_hash": "0" * 64},
    ],
    ids=["numbered", "hashed", "linked"],
)
def test_the_trigger_refuses_an_entry_that_arrives_sealed(sealed):
    # A forged archive entry, say, cannot be slipped in already sealed: only
    # the sealer numbers entries, in order, after the last one.
    columns = ["created_at", "action", "model", "changes", *sealed]
    _refused(
        f"INSERT INTO core_auditentry ({', '.join(columns)}, actor_label, actor_kind, origin, "  # noqa: S608
        "user_agent, success, object_id, object_label, reason) "
        f"VALUES (now(), 'archive', 'core.auditentry', %s, {', '.join(['%s'] * len(sealed))}, "
        "'', 'system', '', '', true, '', '', '')",
        ['{"through_seq": [null, 1000]}', *sealed.values()],
        match="written unsealed",
    )
    assert not AuditEntry.objects.filter(action="archive").exists()


# ---------------------------------------------------------------------------
# Tampering behind the trigger's back is found by verify()
# ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_verify_reports_an_entry_edited_with_the_trigger_disabled(untriggered):
    entries = _entries(4)
    trail.seal()
    target = AuditEntry.objects.get(pk=entries[2].pk)

    assert (
        untriggered(
            "UPDATE core_auditentry SET object_label = 'nothing to see' WHERE id = %s", [target.pk]
        )
        == 1
    )

    result = trail.verify()
    assert not result.intact
    assert (result.broken_id, result.broken_seq) == (target.pk, target.seq)
    assert result.problem == "content altered"
    assert result.found == target.hash
    altered = AuditEntry.objects.get(pk=target.pk)
    assert result.expected == trail.entry_hash(target.prev_hash, altered) != target.hash
    assert result.entries == 2  # the ones before it checked out
    # The trigger is back on.
    _refused(
        "UPDATE core_auditentry SET object_label = 'again' WHERE id = %s",
        [target.pk],
        match="append-only",
    )


@pytest.mark.django_db
def test_verify_reports_an_entry_deleted_with_the_trigger_disabled(untriggered):
    entries = _entries(4)
    trail.seal()
    gone, after = (AuditEntry.objects.get(pk=e.pk) for e in entries[1:3])

    assert untriggered("DELETE FROM core_auditentry WHERE id = %s", [gone.pk]) == 1

    result = trail.verify()
    assert not result.intact
    assert result.problem == "an entry is missing"
    assert (result.broken_id, result.broken_seq) == (after.pk, after.seq)
    assert (result.expected, result.found) == (str(gone.seq), str(after.seq))
    assert result.entries == 1
    _refused("DELETE FROM core_auditentry WHERE id = %s", [after.pk], match="cannot be deleted")


# ---------------------------------------------------------------------------
# (d) many writers at once: one gapless chain
# ---------------------------------------------------------------------------

THREADS = 4
ROUNDS = 8


def _history_rows() -> int:
    """Rows in every simple-history table (one audit entry each)."""
    from simple_history.models import registered_models

    managers = {
        model.history.model: model.history
        for model in registered_models.values()
        if hasattr(model, "history")
    }
    return sum(manager.count() for manager in managers.values())


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_leave_one_gapless_verified_chain():
    entries_before, history_before = AuditEntry.objects.count(), _history_rows()
    barrier = threading.Barrier(THREADS)
    errors = []

    def write(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for n in range(ROUNDS):
                # One transaction: a user created and renamed, a merchant created
                # (with its owner's grants) and renamed; sealed after commit.
                with transaction.atomic():
                    user = UserFactory(username=f"writer{index}_{n}")
                    user.first_name = f"Renamed {index}.{n}"
                    user.save()
                    merchant = MerchantFactory(
                        owner=user,
                        legal_name=f"Race {index}.{n} Limited",
                        trading_name=f"Race {index}.{n}",
                        registration_number=f"{30_000_000 + index * 1000 + n}",
                    )
                    merchant_services.merchant_update(
                        merchant=merchant, actor=user, trading_name=f"Race {index}.{n} renamed"
                    )
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    # Every writer's transaction sealed its entries after commit: nothing is left.
    assert trail.seal() == 0
    written = AuditEntry.objects.count() - entries_before
    assert written == _history_rows() - history_before
    assert written >= THREADS * ROUNDS * 5
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    result = trail.verify()
    assert result.intact, result.summary()
    assert (result.entries, result.pending) == (len(seqs), 0)


@pytest.mark.django_db(transaction=True)
def test_an_entry_committed_below_the_quick_seal_window_is_sealed_by_the_full_sweep(
    monkeypatch,
):
    # given: the quick seal after a commit looks only 2 ids below the top
    monkeypatch.setattr(trail, "SEAL_WINDOW", 2)
    written, release, done = threading.Event(), threading.Event(), threading.Event()
    errors, slow_ids = [], []

    def slow_writer() -> None:
        # a transaction that writes its entry early and commits late
        try:
            with transaction.atomic():
                slow_ids.append(UserFactory(username="slow_writer").pk)
                written.set()
                release.wait(timeout=10)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert written.wait(timeout=10)
    # meanwhile five other changes commit and are sealed, each right away
    for n in range(5):
        UserFactory(username=f"quick_writer{n}")
    release.set()
    thread.join(timeout=10)
    assert done.is_set()
    assert errors == []

    # then: the slow writer's quick seal did not reach its own entry ...
    slow = AuditEntry.objects.get(model="core.user", object_id=str(slow_ids[0]), action="create")
    assert slow.seq is None
    assert trail.verify().pending == 1
    # ... the full sweep (beat's audit_trail_seal) does, and the chain holds
    from core.tasks import audit_trail_seal

    assert audit_trail_seal.apply().get() == 1
    slow.refresh_from_db()
    assert slow.seq == AuditEntry.objects.count()
    result = trail.verify()
    assert result.intact, result.summary()
    assert result.pending == 0
