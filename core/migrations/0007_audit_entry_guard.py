"""The audit trail is insert-only: compliance reads it, nobody edits it.

On PostgreSQL a trigger refuses
- any UPDATE, except the sealer's one-time setting of seq/prev_hash/hash on an
  unsealed entry whose other columns stay as written;
- any DELETE, except of entries an archive entry on the chain says were
  archived (``manage.py archive_audit_trail``).
TRUNCATE is not covered by row triggers; the application's database role
should not own the table (see README, "Audit trail").
"""

from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

GRANTS = {"compliance": ["view_auditentry"]}

GUARD = r"""
CREATE OR REPLACE FUNCTION core_auditentry_guard() RETURNS trigger AS $$
DECLARE
    archived bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash <> ''
           AND (to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash')
               = (to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit entry % cannot be changed: the audit trail is append-only', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT max((changes -> 'through_seq' ->> 1)::bigint) INTO archived
      FROM core_auditentry WHERE action = 'archive' AND seq IS NOT NULL;
    IF OLD.seq IS NOT NULL AND OLD.seq <= coalesce(archived, 0) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entry % cannot be deleted: only archived entries may leave the trail', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS core_auditentry_guard ON core_auditentry;
CREATE TRIGGER core_auditentry_guard
    BEFORE UPDATE OR DELETE ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION core_auditentry_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS core_auditentry_guard ON core_auditentry;
DROP FUNCTION IF EXISTS core_auditentry_guard();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD, params=None)


def grant(apps, schema_editor):
    grant_model_perms(apps, "core", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "core", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("core", "0006_audit_entry")]

    operations = [
        migrations.RunPython(guard, unguard),
        migrations.RunPython(grant, revoke),
    ]
