"""PostgreSQL triggers that keep the audit trail insert-only.

- ``core_auditentry``: an INSERT must carry a MAC and key id and none of the
  earlier chain's columns; the trigger stamps ``txid`` (the writing
  transaction), which orders the entry for the sealer. Every UPDATE is
  refused. A DELETE is allowed only for an entry older than the retention
  period that an archive entry covers.
- ``core_auditseal``: an INSERT must continue the chain (the next number,
  starting where the last seal ended, ending no later than the oldest
  running transaction), so a forged seal cannot push the chain's end out of
  reach; no UPDATE; a DELETE only of a seal older than the retention period
  that an archive entry covers.

The retention period is written into the functions when they are installed
(the migration, or ``install`` again after changing ``AUDIT_RETENTION_DAYS``),
so the application's role cannot shorten it. TRUNCATE and dropping a trigger
need the table's owner: run the application as a role that does not own the
tables (README, "Audit trail"); a superuser can still do anything, which is
what the MACs and the checkpoints outside the database are for.
"""

from __future__ import annotations

ENTRY_GUARD = r"""
CREATE OR REPLACE FUNCTION core_auditentry_insert_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.hash <> '' OR NEW.prev_hash <> '' THEN
        RAISE EXCEPTION 'audit entries are written in the keyed format, not the earlier chain'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.mac = '' OR NEW.key_id = '' THEN
        RAISE EXCEPTION 'an audit entry must arrive with its MAC and key id'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    NEW.txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION core_auditentry_guard() RETURNS trigger AS $$
DECLARE
    archived_high bigint;
    legacy_through bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit entry % cannot be changed: the audit trail is append-only', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.created_at >= now() - interval '%(days)s days' THEN
        RAISE EXCEPTION 'audit entry % is younger than the retention period (%(days)s days)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT max((changes -> 'through_high' ->> 1)::bigint),
           max((changes -> 'legacy_through_seq' ->> 1)::bigint)
      INTO archived_high, legacy_through
      FROM core_auditentry WHERE action = 'archive';
    IF (OLD.txid IS NOT NULL AND OLD.txid < coalesce(archived_high, 0))
       OR (OLD.seq IS NOT NULL AND OLD.seq <= coalesce(legacy_through, 0)) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entry % cannot be deleted: no archive covers it', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION core_auditseal_guard() RETURNS trigger AS $$
DECLARE
    archived bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'audit seal % cannot be changed', OLD.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.created_at >= now() - interval '%(days)s days' THEN
        RAISE EXCEPTION 'audit seal % is younger than the retention period', OLD.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT max((changes -> 'through_seal' ->> 1)::bigint) INTO archived
      FROM core_auditentry WHERE action = 'archive';
    IF OLD.seq <= coalesce(archived, 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit seal % cannot be deleted: no archive covers it', OLD.seq
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION core_auditseal_insert_guard() RETURNS trigger AS $$
DECLARE
    last_seq bigint;
    last_high bigint;
BEGIN
    SELECT seq, high INTO last_seq, last_high FROM core_auditseal ORDER BY seq DESC LIMIT 1;
    IF NEW.low >= NEW.high
       OR NEW.high > pg_snapshot_xmin(pg_current_snapshot())::text::bigint
       OR (last_seq IS NOT NULL AND (NEW.seq <> last_seq + 1 OR NEW.low <> last_high)) THEN
        RAISE EXCEPTION 'audit seal % does not continue the chain', NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS core_auditseal_insert_guard ON core_auditseal;
CREATE TRIGGER core_auditseal_insert_guard
    BEFORE INSERT ON core_auditseal
    FOR EACH ROW EXECUTE FUNCTION core_auditseal_insert_guard();
DROP TRIGGER IF EXISTS core_auditentry_insert_guard ON core_auditentry;
CREATE TRIGGER core_auditentry_insert_guard
    BEFORE INSERT ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION core_auditentry_insert_guard();
DROP TRIGGER IF EXISTS core_auditentry_guard ON core_auditentry;
CREATE TRIGGER core_auditentry_guard
    BEFORE UPDATE OR DELETE ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION core_auditentry_guard();
DROP TRIGGER IF EXISTS core_auditseal_guard ON core_auditseal;
CREATE TRIGGER core_auditseal_guard
    BEFORE UPDATE OR DELETE ON core_auditseal
    FOR EACH ROW EXECUTE FUNCTION core_auditseal_guard();
"""

REMOVE = """
DROP TRIGGER IF EXISTS core_auditseal_guard ON core_auditseal;
DROP FUNCTION IF EXISTS core_auditseal_guard();
DROP TRIGGER IF EXISTS core_auditseal_insert_guard ON core_auditseal;
DROP FUNCTION IF EXISTS core_auditseal_insert_guard();
"""


def install(schema_editor_or_cursor, *, retention_days: int) -> None:
    sql = ENTRY_GUARD.replace("%(days)s", str(int(retention_days)))
    _execute(schema_editor_or_cursor, sql)


def remove(schema_editor) -> None:
    """Back to the earlier chain's guards (migrations 0007 and 0008)."""
    import importlib

    _execute(schema_editor, REMOVE)
    for name, attr in (("0007_audit_entry_guard", "GUARD"),
                       ("0008_audit_entry_search_and_insert_guard", "INSERT_GUARD")):  # fmt: skip
        _execute(schema_editor, getattr(importlib.import_module(f"core.migrations.{name}"), attr))


def _execute(target, sql: str) -> None:
    if (
        hasattr(target, "execute")
        and hasattr(target, "connection")
        and hasattr(target, "deferred_sql")
    ):
        target.execute(sql, params=None)
    else:
        target.execute(sql)
