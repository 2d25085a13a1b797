"""The standard onboarding workflow shipped with the demo (issue 4)."""

from django.contrib.auth.models import Group

from core.roles import COMPLIANCE, ONBOARDING, RISK, SALES

HIGH_RISK_MCCS = ["5967", "5993", "6051", "7273", "7995"]

# Risk review only for risky merchants: high risk level, volume above
# HKD 1,000,000 a month, or an MCC on the high-risk list. Two approvers.
RISK_CONDITION = {
    "any": [
        {"field": "merchant.risk_level", "op": "eq", "value": "high"},
        {"field": "merchant.expected_monthly_volume", "op": "gt", "value": "1000000"},
        {"field": "merchant.mcc", "op": "in", "value": HIGH_RISK_MCCS},
    ]
}


def standard_steps() -> list[dict]:
    group = {name: Group.objects.get(name=name) for name in (SALES, ONBOARDING, COMPLIANCE, RISK)}
    return [
        {"name": "Sales review", "group": group[SALES], "sla_hours": 24},
        {
            "name": "Document check",
            "group": group[ONBOARDING],
            "sla_hours": 48,
            "required_documents": ["business_registration", "owner_id"],
        },
        {"name": "KYB review", "group": group[COMPLIANCE], "sla_hours": 48},
        {
            "name": "Risk review",
            "group": group[RISK],
            "approvals_required": 2,
            "condition": RISK_CONDITION,
            "sla_hours": 72,
        },
        {"name": "Contract approval", "group": group[ONBOARDING], "sla_hours": 24},
    ]
