"""A settlement run calculated by a real Celery worker through Redis.

Runs when a worker is up (``.ci/run`` starts one and sets PAYCRM_CELERY_WORKER=1);
otherwise skipped with a note on how to run it.
"""

import pytest
from django.conf import settings

from settlements.models import SettlementRun
from settlements.services import runs
from tests.conftest import env_flag, restore_roles, wait_for
from tests.factories.core import UserFactory
from tests.settlements.runs_setup import OCT_END, OCT_START, build_world

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


def test_worker_calculates_a_run_and_history_names_the_actor():
    # given: committed rows the worker process can read
    restore_roles()
    finance = UserFactory(username="finance-worker", roles=["finance"])
    build_world(actor=finance)
    run = runs.settlement_run_create(
        actor=finance, period_start=OCT_START, period_end=OCT_END, currency="HKD"
    )
    # when: the service queues the task after commit; Redis hands it to the worker
    runs.settlement_run_calculate(actor=finance, run=run)

    # then
    def done() -> bool:
        run.refresh_from_db()
        return run.status != SettlementRun.Status.CALCULATING

    assert wait_for(done, timeout=90)
    assert run.status == SettlementRun.Status.CALCULATED, run.calculation_error
    assert str(run.total_share) == "1220.0000"
    latest = run.history.first()
    assert latest.history_user_id == finance.pk
    assert latest.history_origin == "task settlements.settlement_run_calculate"
