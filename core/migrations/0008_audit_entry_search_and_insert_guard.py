"""PostgreSQL only: the audit trail's text search index, and a guard on INSERT.

- Free text on the audit page (record label, reason, origin) is an
  ``UPPER(col) LIKE UPPER('%text%')``; a trigram GIN index on those
  expressions turns the scan of millions of rows into an index lookup. It
  needs the pg_trgm extension: where the migrating role may not create it,
  the index is left out (search still works, slower) and a note is printed.
- An entry must arrive unsealed: only the sealer numbers and hashes entries
  (by the one UPDATE the guard allows), so an INSERT carrying seq or hash is
  refused, and so is one that pretends to be a sealed archive entry.
"""

import logging

from django.conf import settings
from django.db import migrations, models, transaction

logger = logging.getLogger(__name__)

INSERT_GUARD = r"""
CREATE OR REPLACE FUNCTION core_auditentry_insert_guard() RETURNS trigger AS $$
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.hash <> '' OR NEW.prev_hash <> '' THEN
        RAISE EXCEPTION 'audit entries are written unsealed: only the sealer numbers them'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS core_auditentry_insert_guard ON core_auditentry;
CREATE TRIGGER core_auditentry_insert_guard
    BEFORE INSERT ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION core_auditentry_insert_guard();
"""

DROP_INSERT_GUARD = """
DROP TRIGGER IF EXISTS core_auditentry_insert_guard ON core_auditentry;
DROP FUNCTION IF EXISTS core_auditentry_insert_guard();
"""

TEXT_INDEX = """
CREATE INDEX IF NOT EXISTS audit_text_trgm ON core_auditentry USING gin (
    (upper(object_label::text)) gin_trgm_ops,
    (upper(reason::text)) gin_trgm_ops,
    (upper(origin::text)) gin_trgm_ops
)
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(INSERT_GUARD, params=None)
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    except Exception as exc:  # no privilege for extensions: search works without the index
        logger.warning("audit trail: no text search index (%s); ask a superuser for pg_trgm", exc)
        return
    schema_editor.execute(TEXT_INDEX, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS audit_text_trgm", params=None)
    schema_editor.execute(DROP_INSERT_GUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0007_audit_entry_guard"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The (actor, -id) index serves every lookup by actor; the foreign
        # key's own index would only cost writes.
        migrations.AlterField(
            model_name="auditentry",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
