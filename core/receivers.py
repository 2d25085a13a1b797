from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate
from simple_history.signals import post_create_historical_record, pre_create_historical_record

from core import audit


def _record_sign_out(sender, request, user, **kwargs) -> None:
    from core.models import AuthEvent
    from core.services import ClientInfo, auth_event_record

    if user is not None:
        auth_event_record(
            kind=AuthEvent.Kind.SIGN_OUT, client=ClientInfo.from_request(request), user=user
        )


def _record_role_grants(sender, using, **kwargs) -> None:
    # post_migrate reaches every app after the whole migration; once is enough,
    # and only when the trail's tables are there (not after migrating back).
    from django.db import connections

    from core.models import AuditEntry

    if sender.label != "core" or AuditEntry._meta.db_table not in (
        connections[using].introspection.table_names()
    ):
        return
    from core.services import role_grants_record

    role_grants_record()


def connect() -> None:
    post_migrate.connect(_record_role_grants, dispatch_uid="core.role_grants")
    user_logged_out.connect(_record_sign_out, dispatch_uid="core.sign_out")
    pre_create_historical_record.connect(audit.set_history_origin, dispatch_uid="core.origin")
    from core import trail

    post_create_historical_record.connect(trail.append_from_history, dispatch_uid="core.trail")
