from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

GRANTS = {"compliance": ["view_sensitiveaccess"], "admin": ["view_sensitiveaccess"]}


def grant(apps, schema_editor):
    grant_model_perms(apps, "core", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "core", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("core", "0003_sensitive_access")]

    operations = [migrations.RunPython(grant, revoke)]
