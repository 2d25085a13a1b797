from django.contrib.auth.signals import user_logged_out
from simple_history.signals import post_create_historical_record, pre_create_historical_record

from core import audit


def _record_sign_out(sender, request, user, **kwargs) -> None:
    from core.models import AuthEvent
    from core.services import ClientInfo, auth_event_record

    if user is not None:
        auth_event_record(
            kind=AuthEvent.Kind.SIGN_OUT, client=ClientInfo.from_request(request), user=user
        )


def connect() -> None:
    user_logged_out.connect(_record_sign_out, dispatch_uid="core.sign_out")
    pre_create_historical_record.connect(audit.set_history_origin, dispatch_uid="core.origin")
    from core import trail

    post_create_historical_record.connect(trail.append_from_history, dispatch_uid="core.trail")
