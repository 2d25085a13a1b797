from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

RECORDS = ["application", "stepdecision", "informationrequest"]
WORKFLOW = ["workflowdefinition", "workflowstep"]


def _perms(actions, models):
    return [f"{a}_{m}" for m in models for a in actions]


GRANTS = {
    # Sales open and submit applications for merchants they hold.
    "sales": [*_perms(["view", "add", "change"], ["application"]), *_perms(["view"], WORKFLOW)],
    "onboarding": [*_perms(["view"], RECORDS + WORKFLOW), "add_stepdecision"],
    "compliance": [*_perms(["view"], RECORDS + WORKFLOW), "add_stepdecision"],
    "risk": [*_perms(["view"], RECORDS + WORKFLOW), "add_stepdecision"],
    "finance": _perms(["view"], ["application"]),
    "admin": [*_perms(["view", "add", "change"], WORKFLOW), *_perms(["view"], RECORDS)],
}


def grant(apps, schema_editor):
    grant_model_perms(apps, "onboarding", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "onboarding", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0001_initial"), ("core", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
