"""Every model keeps history: a new model without it fails here."""

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from guardian.models import GroupObjectPermission, UserObjectPermission
from simple_history.models import HistoricalChanges, registered_models

PROJECT_APPS = ["core", "merchants", "onboarding", "settlements", "risk", "customers"]
THIRD_PARTY = [get_user_model(), Group, UserObjectPermission, GroupObjectPermission]
# The audit trail's own entries are the history: insert-only, hash-chained and
# guarded by a trigger, so a history table beside them would record nothing.
# Its seals are the chain's links, insert-only under the same guard. The
# ledger is insert-only too (a trigger refuses UPDATE and DELETE) and each
# row is proven by its batch's entry (a keyed digest over its content).
WITHOUT_HISTORY = {"core.AuditEntry", "core.AuditSeal", "settlements.Transaction"}


def _tracked_models():
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            if issubclass(model, HistoricalChanges):  # skip the history tables themselves
                continue
            if model._meta.label not in WITHOUT_HISTORY:
                yield model
    yield from THIRD_PARTY


@pytest.mark.parametrize("model", list(_tracked_models()), ids=lambda m: m._meta.label)
def test_model_keeps_history(model):
    assert model._meta.db_table in registered_models, f"{model._meta.label} has no history"
    manager_name = model._meta.simple_history_manager_attribute
    history_model = getattr(model, manager_name).model
    # every history row carries the origin of the change, besides user and reason
    field_names = {f.name for f in history_model._meta.get_fields()}
    assert {"history_user", "history_change_reason", "history_origin"} <= field_names


def test_the_walk_covers_the_project_models():
    labels = {m._meta.label for m in _tracked_models()}
    assert {"core.User", "merchants.Merchant", "merchants.MerchantUserObjectPermission"} <= labels
    assert {"auth.Group", "guardian.UserObjectPermission"} <= labels
