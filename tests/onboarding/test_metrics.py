"""Onboarding figures on the dashboard, over the applications the user can see."""

import pytest

from onboarding import selectors, services
from onboarding.models import WorkflowStep
from onboarding.standard import standard_steps
from tests.factories.core import UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _workflow(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    admin = UserFactory(username="ad1", roles=["admin"])
    steps = standard_steps()[:1]  # one step keeps the walk short
    definition = services.definition_create(actor=admin, key="standard", name="S", steps=steps)
    services.definition_publish(actor=admin, definition=definition)


def test_metrics_count_states_rate_and_median_per_step(web, sales1, sales2):
    peer = UserFactory(roles=["sales"])
    outcomes = ["approve", "approve", "approve", "reject"]
    for kind in outcomes:
        application = services.application_create(
            actor=sales1, merchant=MerchantFactory(owner=sales1)
        )
        services.application_submit(actor=sales1, application=application)
        services.decision_record(actor=peer, application=application, kind=kind, comment="x")
    services.application_create(actor=sales2, merchant=MerchantFactory(owner=sales2))
    metrics = selectors.onboarding_metrics(user=sales1)
    states = {s["label"]: s["count"] for s in metrics["by_state"]}
    assert (states["Approved"], states["Rejected"], states["Draft"]) == (3, 1, 0)  # not sales2's
    assert metrics["approval_rate"] == 75
    assert [m["step"] for m in metrics["median_hours"]] == [WorkflowStep.objects.get().name]
    page = web(sales1).get("/").content.decode()
    assert 'data-testid="approval-rate">75%<' in page
