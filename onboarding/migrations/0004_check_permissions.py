from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

GRANTS = {
    "compliance": [
        "view_compliancecheck",
        "resolve_compliancecheck",
        "view_screeningentry",
        "add_screeningentry",
    ],
    "onboarding": ["view_compliancecheck"],
    "risk": ["view_compliancecheck", "view_screeningentry"],
    "sales": ["view_compliancecheck"],
    "admin": ["view_compliancecheck", "view_screeningentry", "add_screeningentry"],
}


def grant(apps, schema_editor):
    grant_model_perms(apps, "onboarding", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "onboarding", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0003_screening")]

    operations = [migrations.RunPython(grant, revoke)]
