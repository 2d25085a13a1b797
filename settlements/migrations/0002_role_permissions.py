from django.db import migrations

from core.roles import grant_model_perms, revoke_model_perms

LEDGER = ["transaction", "transactionsource", "webhookevent", "fxrate"]
AGREEMENTS = ["revenueshareagreement", "agreementtier"]
RUNS = ["settlementrun", "settlementapproval", "statement", "statementline", "merchantbasis",
        "adjustment", "settlementexport"]
RECONCILIATION = ["reconciliation", "reconciliationitem"]
EVERYTHING = LEDGER + AGREEMENTS + RUNS + RECONCILIATION


def _perms(actions, models):
    return [f"{a}_{m}" for m in models for a in actions]


GRANTS = {
    # Finance runs settlements end to end; approval rights are a separate verb so
    # that four eyes is enforced by the service, not by who holds which perm.
    "finance": [
        *_perms(["view"], EVERYTHING),
        *_perms(["add"], ["transaction", "fxrate", "revenueshareagreement", "agreementtier",
                          "settlementrun", "adjustment", "reconciliation"]),
        *_perms(["change"], ["fxrate", "revenueshareagreement", "agreementtier",
                             "settlementrun", "reconciliationitem"]),
        "approve_settlementrun",
        "export_settlementrun",
    ],
    "compliance": _perms(["view"], EVERYTHING),
    "risk": _perms(["view"], ["transaction", "transactionsource"]),
    # Admins look after integrations: sources, their secrets, ingestion.
    "admin": [
        *_perms(["view", "add", "change"], ["transactionsource"]),
        *_perms(["view", "add"], ["transaction"]),
    ],
}  # fmt: skip


def grant(apps, schema_editor):
    grant_model_perms(apps, "settlements", GRANTS)


def revoke(apps, schema_editor):
    revoke_model_perms(apps, "settlements", GRANTS)


class Migration(migrations.Migration):
    dependencies = [("settlements", "0001_initial"), ("core", "0002_roles")]

    operations = [migrations.RunPython(grant, revoke)]
