"""The ledger and approved runs hold in the database too, whatever writes to it.

``settlements.guards`` refuses changes made through models; a queryset
``update()``/``delete()`` or raw SQL skips it. On PostgreSQL these triggers
refuse, with SQLSTATE 23000 (Django's ``IntegrityError``):

- any UPDATE or DELETE of a ledger transaction: a correction is a new one;
- any DELETE of an approved or exported run, and any UPDATE of one except
  approved/exported → exported that changes nothing but ``status`` and
  ``updated_at`` (what ``settlement_run_export`` does);
- any INSERT, UPDATE or DELETE of a statement, statement line, merchant basis
  or adjustment of such a run (on UPDATE, the old run and the new one);
- any UPDATE or DELETE of such a run's approvals. Their INSERT is not
  checked here (``settlements.guards`` refuses a saved one on a frozen run).

A child's check takes FOR SHARE on its run row: a write racing an approval
waits for it and then sees the run's new status, and the approval waits for
the write. The services lock the run first, so they never wait on themselves.
TRUNCATE fires no row triggers (test flushes use it); the application's
database role should not own these tables. SQLite has no triggers here.
"""

from django.db import migrations

GUARD = r"""
CREATE OR REPLACE FUNCTION settlements_transaction_guard() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'integrity_constraint_violation',
        MESSAGE = format('transaction %s cannot be %sd: ', OLD.id, lower(TG_OP))
            || 'the ledger is append-only: a correction is a new transaction';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS settlements_transaction_guard ON settlements_transaction;
CREATE TRIGGER settlements_transaction_guard
    BEFORE UPDATE OR DELETE ON settlements_transaction
    FOR EACH ROW EXECUTE FUNCTION settlements_transaction_guard();


CREATE OR REPLACE FUNCTION settlements_settlementrun_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status NOT IN ('approved', 'exported') THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.status = 'exported'
           AND (to_jsonb(NEW) - 'status' - 'updated_at')
               = (to_jsonb(OLD) - 'status' - 'updated_at') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'integrity_constraint_violation',
        MESSAGE = format('settlement run %s is %s and frozen: ', OLD.id, OLD.status)
            || 'only its export (the status to exported, nothing else) may change it';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS settlements_settlementrun_guard ON settlements_settlementrun;
CREATE TRIGGER settlements_settlementrun_guard
    BEFORE UPDATE OR DELETE ON settlements_settlementrun
    FOR EACH ROW EXECUTE FUNCTION settlements_settlementrun_guard();


-- Refuses when the run is approved or exported; locks its row FOR SHARE.
CREATE OR REPLACE FUNCTION settlements_refuse_frozen_run(run bigint, tbl text) RETURNS void AS $$
DECLARE
    run_status text;
BEGIN
    IF run IS NULL THEN
        RETURN;
    END IF;
    SELECT status INTO run_status FROM settlements_settlementrun WHERE id = run FOR SHARE;
    IF run_status IN ('approved', 'exported') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'integrity_constraint_violation',
            MESSAGE = format('settlement run %s is %s and frozen: ', run, run_status)
                || format('its %s rows cannot be added, changed or deleted', tbl);
    END IF;
END;
$$ LANGUAGE plpgsql;

-- settlements_statement, settlements_merchantbasis, settlements_adjustment
-- (every operation) and settlements_settlementapproval (UPDATE, DELETE).
CREATE OR REPLACE FUNCTION settlements_run_child_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM settlements_refuse_frozen_run(NEW.run_id, TG_TABLE_NAME);
        RETURN NEW;
    END IF;
    PERFORM settlements_refuse_frozen_run(OLD.run_id, TG_TABLE_NAME);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.run_id IS DISTINCT FROM OLD.run_id THEN
        PERFORM settlements_refuse_frozen_run(NEW.run_id, TG_TABLE_NAME);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION settlements_statementline_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM settlements_refuse_frozen_run(
            (SELECT run_id FROM settlements_statement WHERE id = NEW.statement_id), TG_TABLE_NAME
        );
        RETURN NEW;
    END IF;
    PERFORM settlements_refuse_frozen_run(
        (SELECT run_id FROM settlements_statement WHERE id = OLD.statement_id), TG_TABLE_NAME
    );
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.statement_id IS DISTINCT FROM OLD.statement_id THEN
        PERFORM settlements_refuse_frozen_run(
            (SELECT run_id FROM settlements_statement WHERE id = NEW.statement_id), TG_TABLE_NAME
        );
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS settlements_statement_guard ON settlements_statement;
CREATE TRIGGER settlements_statement_guard
    BEFORE INSERT OR UPDATE OR DELETE ON settlements_statement
    FOR EACH ROW EXECUTE FUNCTION settlements_run_child_guard();

DROP TRIGGER IF EXISTS settlements_merchantbasis_guard ON settlements_merchantbasis;
CREATE TRIGGER settlements_merchantbasis_guard
    BEFORE INSERT OR UPDATE OR DELETE ON settlements_merchantbasis
    FOR EACH ROW EXECUTE FUNCTION settlements_run_child_guard();

DROP TRIGGER IF EXISTS settlements_adjustment_guard ON settlements_adjustment;
CREATE TRIGGER settlements_adjustment_guard
    BEFORE INSERT OR UPDATE OR DELETE ON settlements_adjustment
    FOR EACH ROW EXECUTE FUNCTION settlements_run_child_guard();

DROP TRIGGER IF EXISTS settlements_settlementapproval_guard ON settlements_settlementapproval;
CREATE TRIGGER settlements_settlementapproval_guard
    BEFORE UPDATE OR DELETE ON settlements_settlementapproval
    FOR EACH ROW EXECUTE FUNCTION settlements_run_child_guard();

DROP TRIGGER IF EXISTS settlements_statementline_guard ON settlements_statementline;
CREATE TRIGGER settlements_statementline_guard
    BEFORE INSERT OR UPDATE OR DELETE ON settlements_statementline
    FOR EACH ROW EXECUTE FUNCTION settlements_statementline_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS settlements_statementline_guard ON settlements_statementline;
DROP TRIGGER IF EXISTS settlements_settlementapproval_guard ON settlements_settlementapproval;
DROP TRIGGER IF EXISTS settlements_adjustment_guard ON settlements_adjustment;
DROP TRIGGER IF EXISTS settlements_merchantbasis_guard ON settlements_merchantbasis;
DROP TRIGGER IF EXISTS settlements_statement_guard ON settlements_statement;
DROP TRIGGER IF EXISTS settlements_settlementrun_guard ON settlements_settlementrun;
DROP TRIGGER IF EXISTS settlements_transaction_guard ON settlements_transaction;
DROP FUNCTION IF EXISTS settlements_statementline_guard();
DROP FUNCTION IF EXISTS settlements_run_child_guard();
DROP FUNCTION IF EXISTS settlements_refuse_frozen_run(bigint, text);
DROP FUNCTION IF EXISTS settlements_settlementrun_guard();
DROP FUNCTION IF EXISTS settlements_transaction_guard();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("settlements", "0004_ledger_indexes")]

    operations = [migrations.RunPython(guard, unguard)]
