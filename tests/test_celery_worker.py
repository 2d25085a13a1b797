"""A task sent through Redis to a real worker process, against the same database.

Runs when a worker is up (``.ci/run`` starts one and sets PAYCRM_CELERY_WORKER=1);
otherwise skipped with a note on how to run it.
"""

import pytest
from django.conf import settings

from merchants import tasks
from tests.conftest import env_flag
from tests.factories.merchants import MerchantFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_worker():
    if not env_flag("PAYCRM_CELERY_WORKER"):
        pytest.skip(
            "needs Redis and a Celery worker: set REDIS_URL, start "
            "`celery -A config worker` on the test database, export PAYCRM_CELERY_WORKER=1"
        )
    assert settings.REDIS_URL, "PAYCRM_CELERY_WORKER is set but REDIS_URL is not"
    assert not settings.CELERY_TASK_ALWAYS_EAGER


def test_worker_moves_merchants_and_history_names_the_actor(admin1, sales1, sales2):
    # given: committed rows the worker process can read
    merchants = MerchantFactory.create_batch(3, owner=sales1)
    # when: the message goes through Redis, the worker runs it, the result comes back
    result = tasks.merchant_transfer_owner.delay(
        merchant_ids=[m.pk for m in merchants],
        new_owner_id=sales2.pk,
        actor_id=admin1.pk,
        reason="sales1 left the team",
    )
    moved = result.get(timeout=60)
    # then
    assert moved == 3
    for merchant in merchants:
        merchant.refresh_from_db()
        assert merchant.owner_id == sales2.pk
        latest = merchant.history.first()
        assert latest.history_user_id == admin1.pk
        assert latest.history_origin == "task merchants.merchant_transfer_owner"
        assert latest.history_change_reason == "sales1 left the team"
