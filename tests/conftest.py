import os
import time

import pytest
from django.apps import apps
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tests.factories.core import TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _celery_in_process(request):
    """Tasks run in this process, except in tests that need the real worker.

    With REDIS_URL set (CI) ``delay()`` would otherwise hand the task to the
    worker, which cannot see a test's uncommitted rows.
    """
    from config.celery import app

    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _checkpoint_store(settings, tmp_path):
    # Each test's trail starts empty: so does its store of checkpoints.
    settings.STORAGES = {
        **settings.STORAGES,
        "audit_checkpoints": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "audit-checkpoints")},
        },
    }


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SECURE_SSL_REDIRECT = False


def restore_roles() -> None:
    """Recreate the role groups and their permissions from the data migrations.

    A transactional test starts after an earlier one's flush has emptied the
    tables the migrations filled; this puts the roles back.
    """
    import importlib
    import pkgutil

    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from core.roles import ROLES

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    for label in ("core", "merchants", "onboarding", "settlements", "risk", "customers"):
        package = importlib.import_module(f"{label}.migrations")
        for info in pkgutil.iter_modules(package.__path__):
            grants = getattr(
                importlib.import_module(f"{label}.migrations.{info.name}"), "GRANTS", {}
            )
            for role, codenames in grants.items():
                group, _ = Group.objects.get_or_create(name=role)
                group.permissions.add(
                    *Permission.objects.filter(
                        content_type__app_label=label, codename__in=codenames
                    )
                )


def totp_now(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the user's app shows now (or ``steps_ahead`` 30-second steps later)."""
    t0 = device.t0 - steps_ahead * device.step
    return f"{totp(device.bin_key, device.step, t0, device.digits, device.drift):0{device.digits}d}"


def confirmed_device(user) -> TOTPDevice:
    return TOTPDevice.objects.get_or_create(user=user, confirmed=True, defaults={"name": "app"})[0]


def sign_in_verified(client, user):
    """Sign ``client`` in as ``user`` with a verified second factor, as the pages would."""
    device = confirmed_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def team_hk(db):
    return TeamFactory(name="Hong Kong Sales")


@pytest.fixture
def sales1(db, team_hk):
    user = UserFactory(username="sales1", roles=["sales"])
    user.groups.add(team_hk.group)
    return user


@pytest.fixture
def sales2(db):
    return UserFactory(username="sales2", roles=["sales"])


@pytest.fixture
def compliance1(db):
    return UserFactory(username="compliance1", roles=["compliance"])


@pytest.fixture
def admin1(db):
    return UserFactory(username="admin1", roles=["admin"], is_staff=True)


@pytest.fixture
def web(client):
    """A factory of verified page clients: ``web(user)``."""

    def make(user):
        from django.test import Client

        return sign_in_verified(Client(), user)

    return make


@pytest.fixture
def api():
    """A factory of verified API clients: ``api(user)``."""

    def make(user):
        return sign_in_verified(APIClient(), user)

    return make


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


@pytest.fixture
def finance1(db):
    return UserFactory(username="finance1", roles=["finance"])


@pytest.fixture
def finance2(db):
    return UserFactory(username="finance2", roles=["finance"])


@pytest.fixture
def finance3(db):
    return UserFactory(username="finance3", roles=["finance"])
