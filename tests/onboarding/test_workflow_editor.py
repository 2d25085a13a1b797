"""The workflow editor: drafts change, published versions do not, the diagram follows."""

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from onboarding import services
from onboarding.models import WorkflowDefinition
from onboarding.standard import standard_steps
from tests.factories.core import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    return UserFactory(username="ad1", roles=["admin"])


@pytest.fixture
def published(admin):
    definition = services.definition_create(
        actor=admin, key="standard", name="Standard", steps=standard_steps()
    )
    return services.definition_publish(actor=admin, definition=definition)


def _post_data(steps):
    data = {
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(len(steps)),
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{i}-{key}"] = value
    return data


def _step(name, group, order, **more):
    return {
        "name": name,
        "group": Group.objects.get(name=group).pk,
        "approvals_required": "1",
        "sla_hours": "24",
        "ORDER": str(order),
        "condition": "",
        **more,
    }


def test_admin_edits_a_new_version_and_publishes_it(web, admin, published):
    client = web(admin)
    page = client.get(reverse("onboarding:workflow", args=[published.pk])).content.decode()
    assert "This version is fixed" in page
    response = client.post(
        reverse("onboarding:workflow_action", args=[published.pk, "new-version"])
    )
    draft = WorkflowDefinition.objects.get(status="draft")
    assert response["Location"] == reverse("onboarding:workflow", args=[draft.pk])
    condition = {"field": "merchant.country", "op": "in", "value": ["SG", "MY"]}
    steps = [
        _step("KYB review", "compliance", 1, approvals_required="2"),
        _step("Sales review", "sales", 2, condition=json.dumps(condition)),
        _step("Dropped", "risk", 3, DELETE="on"),
    ]
    response = client.post(reverse("onboarding:workflow", args=[draft.pk]), _post_data(steps))
    assert response.status_code == 302
    saved = list(
        draft.steps.order_by("position").values_list("name", "approvals_required", "condition")
    )
    assert saved == [("KYB review", 2, None), ("Sales review", 1, condition)]
    client.post(reverse("onboarding:workflow_action", args=[draft.pk, "publish"]))
    draft.refresh_from_db()
    published.refresh_from_db()
    assert (draft.status, published.status) == ("published", "retired")
    assert published.steps.count() == 5  # the old version is untouched


def test_bad_condition_is_refused_with_its_message(web, admin, published):
    draft = services.definition_new_version(actor=admin, definition=published)
    steps = [_step("KYB", "compliance", 1, condition='{"field": "merchant.mcc", "op": "gt"}')]
    response = web(admin).post(reverse("onboarding:workflow", args=[draft.pk]), _post_data(steps))
    assert response.status_code == 400
    assert "exactly field, op and value" in response.content.decode()
    assert draft.steps.count() == 5


def test_preview_draws_the_unsaved_flow(web, admin, published):
    draft = services.definition_new_version(actor=admin, definition=published)
    condition = {"field": "merchant.risk_level", "op": "eq", "value": "high"}
    steps = [_step("Risk", "risk", 1, approvals_required="2", condition=json.dumps(condition))]
    response = web(admin).post(
        reverse("onboarding:workflow_preview", args=[draft.pk]), _post_data(steps)
    )
    body = response.content.decode()
    assert "1. Risk" in body
    assert "risk_level = high" in body
    assert "2 approvers" in body
    assert draft.steps.count() == 5  # a preview saves nothing


def test_published_versions_and_non_admins_are_refused(web, admin, published, sales1):
    steps = [_step("X", "sales", 1)]
    response = web(admin).post(
        reverse("onboarding:workflow", args=[published.pk]), _post_data(steps)
    )
    assert response.status_code == 400
    assert "cannot change" in response.content.decode()
    assert published.steps.count() == 5
    assert web(sales1).get(reverse("onboarding:workflows")).status_code == 403
    assert web(sales1).get(reverse("onboarding:workflow", args=[published.pk])).status_code == 403


def test_definition_changes_are_on_record_with_the_admin(web, admin, published):
    draft = services.definition_new_version(actor=admin, definition=published)
    web(admin).post(
        reverse("onboarding:workflow", args=[draft.pk]), _post_data([_step("Only", "sales", 1)])
    )
    from onboarding.models import WorkflowStep

    removed = WorkflowStep.history.filter(definition_id=draft.pk, history_type="-")
    assert removed.count() == 5
    assert {h.history_user for h in removed} == {admin}
    assert published.history.filter(status="published").first().history_user == admin
