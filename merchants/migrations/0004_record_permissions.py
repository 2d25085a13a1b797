from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

RECORDS = ["contact", "beneficialowner", "bankaccount", "document", "activity", "pricingplan",
           "pricingrate", "contract"]


def _perms(actions, models=RECORDS):
    return [f"{a}_{m}" for m in models for a in actions]


GRANTS = {
    # Sales write records of the merchants they hold (object permission on the merchant).
    "sales": _perms(["view", "add", "change"]),
    "onboarding": [*_perms(["view", "add", "change"]), "review_document"],
    "compliance": [
        *_perms(["view"]),
        "review_document",
        "reveal_beneficialowner",
        "reveal_bankaccount",
        "view_historicalbeneficialowner",
        "view_historicalbankaccount",
        "view_historicaldocument",
    ],
    "risk": _perms(["view"]),
    "finance": [*_perms(["view"]), "reveal_bankaccount", "change_bankaccount"],
    "admin": [
        *_perms(["view", "add", "change"]),
        "review_document",
        "reveal_beneficialowner",
        "reveal_bankaccount",
    ],
}


def grant(apps, schema_editor):
    grant_model_perms(apps, "merchants", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "merchants", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0003_crm_records")]

    operations = [migrations.RunPython(grant, revoke)]
