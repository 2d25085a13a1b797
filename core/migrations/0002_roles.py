from django.db import migrations

from core.roles import ROLES, grant_model_perms, revoke_model_perms

VIEW_AUDIT = ["view_authevent", "view_historicaluser", "view_historicalgroup", "view_historicalteam"]
GRANTS = {
    "compliance": [*VIEW_AUDIT],
    "admin": [
        "view_user", "add_user", "change_user",
        "view_team", "add_team", "change_team",
        *VIEW_AUDIT,
    ],
}


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    grant_model_perms(apps, "core", GRANTS)


def remove_grants(apps, schema_editor):
    revoke_model_perms(apps, "core", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(create_roles, remove_grants)]
