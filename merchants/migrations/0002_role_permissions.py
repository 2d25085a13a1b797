from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

GRANTS = {
    # Sales create merchants and see only those granted to them or their team.
    "sales": ["add_merchant", "view_partner"],
    "onboarding": ["view_merchant", "change_merchant", "view_partner"],
    "compliance": [
        "view_merchant", "view_partner", "view_historicalmerchant", "view_historicalpartner",
    ],
    "risk": ["view_merchant", "change_merchant", "view_partner"],
    "finance": ["view_merchant", "view_partner"],
    "admin": [
        "view_merchant", "add_merchant", "change_merchant", "assign_merchant",
        "view_partner", "add_partner", "change_partner",
        "view_historicalmerchant", "view_historicalpartner",
    ],
}


def grant(apps, schema_editor):
    grant_model_perms(apps, "merchants", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "merchants", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0001_initial"), ("core", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
