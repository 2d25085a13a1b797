"""The keyed audit trail (see core.trail and core.trailcheck).

1. Entries the earlier trail left unsealed are sealed in its own (unkeyed)
   format, so that every entry written before this migration belongs to one
   verifiable chain.
2. New columns: each entry's MAC and key id, the rows it proves, and the
   writing transaction (PostgreSQL); seals move to their own table.
3. PostgreSQL guards (core.trail_guards): entries and seals are insert-only;
   an entry must arrive with its MAC and without the earlier chain's columns;
   deletions only of what an archive entry covers and what is older than the
   retention period.
4. The earlier chain is walked and its head recorded in an authenticated
   "reanchor" entry: it stays verifiable as it is, anchored by the key.
"""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def seal_earlier_format(apps, schema_editor):
    from core import trail

    entry_model = apps.get_model("core", "AuditEntry")
    last = entry_model.objects.filter(seq__isnull=False).order_by("-seq").first()
    seq, prev = (last.seq, last.hash) if last else (0, "0" * 64)
    for entry in entry_model.objects.filter(seq__isnull=True).order_by("id"):
        seq += 1
        entry.seq = seq
        digest = trail.legacy_hash(prev, entry)
        entry_model.objects.filter(pk=entry.pk).update(seq=seq, prev_hash=prev, hash=digest)
        prev = digest


def install_guards(apps, schema_editor):
    from core import trail_guards

    if schema_editor.connection.vendor == "postgresql":
        trail_guards.install(schema_editor, retention_days=settings.AUDIT_RETENTION_DAYS)


def remove_guards(apps, schema_editor):
    from core import trail_guards

    if schema_editor.connection.vendor == "postgresql":
        trail_guards.remove(schema_editor)


def reanchor(apps, schema_editor):
    # Uses the current models: the trail's own writing code computes the MAC.
    from core import audit, trail, trailcheck

    entry_model = apps.get_model("core", "AuditEntry")
    if not entry_model.objects.filter(seq__isnull=False).exists():
        return
    count, seq, last_hash, problem = trailcheck.legacy_walk()
    with audit.acting_as(None, origin="migration core.0009_audit_keyed_trail"):
        trail.record_system(
            trail.Action.REANCHOR,
            {"head_seq": seq, "head_hash": last_hash, "entries": count, "problem": problem},
            success=not problem,
            reason="earlier unkeyed chain anchored under the audit key",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0008_audit_entry_search_and_insert_guard"),
    ]

    operations = [
        migrations.RunPython(seal_earlier_format, migrations.RunPython.noop),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.BigIntegerField(unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("key_id", models.CharField(max_length=16)),
                ("low", models.BigIntegerField()),
                ("high", models.BigIntegerField()),
                ("entries", models.PositiveIntegerField()),
                ("total", models.BigIntegerField()),
                ("entry_ids", models.JSONField(default=list)),
                ("digest", models.CharField(max_length=64)),
                ("prev_mac", models.CharField(blank=True, max_length=64)),
                ("mac", models.CharField(max_length=64)),
            ],
            options={
                "ordering": ["-seq"],
                "indexes": [models.Index(fields=["high"], name="audit_seal_high")],
            },
        ),
        migrations.RemoveIndex(
            model_name="auditentry",
            name="audit_unsealed",
        ),
        migrations.AddField(
            model_name="auditentry",
            name="key_id",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="mac",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_digest",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_first",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_ids",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_last",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_model",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="txid",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("create", "Created"),
                    ("update", "Updated"),
                    ("delete", "Deleted"),
                    ("sign_in", "Signed in"),
                    ("sign_in_failed", "Sign-in failed"),
                    ("second_factor_failed", "Second factor failed"),
                    ("second_factor_verified", "Second factor verified"),
                    ("device_enrolled", "Authenticator enrolled"),
                    ("backup_code_used", "Backup code used"),
                    ("locked_out", "Account locked"),
                    ("unlocked", "Account unlocked"),
                    ("sign_out", "Signed out"),
                    ("permission_granted", "Permission granted"),
                    ("permission_revoked", "Permission revoked"),
                    ("reveal", "Sensitive value revealed"),
                    ("export", "Exported"),
                    ("verify", "Trail verified"),
                    ("archive", "Trail archived"),
                    ("reanchor", "Earlier trail anchored"),
                ],
                max_length=30,
            ),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["txid", "id"], name="audit_txid"),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("row_last__isnull", False)),
                fields=["row_model", "row_last"],
                name="audit_rows",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("seq__isnull", False)), fields=("seq",), name="audit_legacy_seq"
            ),
        ),
        migrations.RunPython(install_guards, remove_guards),
        migrations.RunPython(reanchor, migrations.RunPython.noop),
    ]
