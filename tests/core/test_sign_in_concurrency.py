"""Parallel wrong guesses are all counted: the user row is locked per attempt."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.models import AuthEvent, User
from tests.factories.core import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only meaningful on PostgreSQL; set DATABASE_URL to run")


def test_parallel_failures_reach_the_lockout_exactly_once():
    user = UserFactory(username="target")
    User.objects.filter(pk=user.pk).update(failed_sign_in_count=3)
    barrier = threading.Barrier(2)
    statuses = []

    def guess():
        try:
            barrier.wait(timeout=10)
            response = Client().post(
                reverse("core:login"), {"username": "target", "password": "wrong-guess"}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [400, 400]
    user.refresh_from_db()
    assert user.is_locked()
    assert AuthEvent.objects.filter(user=user, kind=AuthEvent.Kind.LOCKED_OUT).count() == 1
    assert AuthEvent.objects.filter(user=user, kind=AuthEvent.Kind.SIGN_IN_FAILED).count() == 2
