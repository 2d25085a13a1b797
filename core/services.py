"""Sign-in, second factor, lockout and the system actor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import audit
from core.models import AuthEvent, BackupCodeDevice, User


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> ClientInfo:
        return cls(ip_address=client_ip(request), user_agent=request.headers.get("User-Agent", ""))


def client_ip(request: HttpRequest) -> str | None:
    # Behind a proxy only the address it appends can be trusted.
    forwarded = request.headers.get("X-Forwarded-For", "")
    if settings.NUM_PROXIES and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= settings.NUM_PROXIES:
            return hops[-settings.NUM_PROXIES]
    return request.META.get("REMOTE_ADDR") or None


def auth_event_record(
    *, kind: str, client: ClientInfo, user: User | None = None, username: str = "", detail: str = ""
) -> AuthEvent:
    event = AuthEvent(
        kind=kind,
        user=user,
        username=(user.username if user else username)[:150],
        ip_address=client.ip_address,
        user_agent=client.user_agent[:300],
        detail=detail[:300],
    )
    audit.stamp(event, actor=user)
    event.save()
    return event


@dataclass
class Outcome:
    ok: bool
    user: User | None = None
    error: str = ""
    locked: bool = False
    backup_codes: list[str] = field(default_factory=list)


def _lock_user(pk: int) -> User:
    return User.objects.select_for_update().get(pk=pk)


def _locked_message(user: User) -> str:
    until = timezone.localtime(user.locked_until)
    return _(
        "This account is locked after repeated failed attempts until %(time)s. "
        "An administrator can unlock it sooner."
    ) % {"time": until.strftime("%H:%M")}


def _register_failure(user: User, *, kind: str, client: ClientInfo, detail: str = "") -> Outcome:
    """Count a failed password or code against the account; lock it at the limit."""
    auth_event_record(kind=kind, client=client, user=user, detail=detail)
    user.failed_sign_in_count += 1
    if user.failed_sign_in_count >= settings.SIGN_IN_MAX_FAILURES:
        user.locked_until = timezone.now() + timedelta(minutes=settings.SIGN_IN_LOCKOUT_MINUTES)
        user.failed_sign_in_count = 0
        audit.stamp(user, actor=user, reason="locked after repeated failed sign-in attempts")
        user.save(update_fields=["failed_sign_in_count", "locked_until"])
        auth_event_record(
            kind=AuthEvent.Kind.LOCKED_OUT,
            client=client,
            user=user,
            detail=f"{settings.SIGN_IN_MAX_FAILURES} failed attempts",
        )
        return Outcome(ok=False, user=user, error=_locked_message(user), locked=True)
    # The counter is excluded from history; this save writes no history row.
    User.objects.filter(pk=user.pk).update(failed_sign_in_count=user.failed_sign_in_count)
    return Outcome(ok=False, user=user)


def _register_success(user: User) -> None:
    if user.failed_sign_in_count:
        User.objects.filter(pk=user.pk).update(failed_sign_in_count=0)
        user.failed_sign_in_count = 0


@transaction.atomic
def sign_in_check_password(
    *, request: HttpRequest, username: str, password: str, client: ClientInfo
) -> Outcome:
    """First factor. Never raises for bad credentials, so the failure is committed.

    Locks the user row so that parallel guesses are all counted.
    """
    wrong = _("Username or password is incorrect.")
    candidate = User.objects.select_for_update().filter(username=username).first()
    if candidate is None:
        authenticate(request, username=username, password=password)  # same cost as a real check
        auth_event_record(
            kind=AuthEvent.Kind.SIGN_IN_FAILED, client=client, username=username, detail="unknown"
        )
        return Outcome(ok=False, error=wrong)
    if candidate.is_locked():
        auth_event_record(
            kind=AuthEvent.Kind.SIGN_IN_FAILED, client=client, user=candidate, detail="locked"
        )
        return Outcome(ok=False, user=candidate, error=_locked_message(candidate), locked=True)
    user = authenticate(request, username=username, password=password)
    if user is None:
        outcome = _register_failure(
            candidate, kind=AuthEvent.Kind.SIGN_IN_FAILED, client=client, detail="password"
        )
        outcome.error = outcome.error or wrong
        return outcome
    # The failure counter is reset only once the second factor passes too;
    # otherwise a known password would buy unlimited guesses at the code.
    auth_event_record(kind=AuthEvent.Kind.SIGN_IN, client=client, user=user, detail="password")
    return Outcome(ok=True, user=user)


def user_has_authenticator(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def second_factor_verify(
    *, request: HttpRequest, user: User, token: str, client: ClientInfo
) -> Outcome:
    """Check a TOTP or backup code and mark the session verified.

    Devices are loaded with ``for_verify=True`` (row locks), so one code can
    not pass twice in parallel requests.
    """
    user = _lock_user(user.pk)
    if user.is_locked():
        return Outcome(ok=False, user=user, error=_locked_message(user), locked=True)
    token = token.strip()
    for device in devices_for_user(user, confirmed=True, for_verify=True):
        if device.verify_token(token):
            otp_login(request, device)
            _register_success(user)
            kind = (
                AuthEvent.Kind.BACKUP_CODE_USED
                if isinstance(device, BackupCodeDevice)
                else AuthEvent.Kind.SECOND_FACTOR_VERIFIED
            )
            auth_event_record(kind=kind, client=client, user=user)
            return Outcome(ok=True, user=user)
    outcome = _register_failure(user, kind=AuthEvent.Kind.SECOND_FACTOR_FAILED, client=client)
    outcome.error = outcome.error or _(
        "That code is not valid. Check your authenticator and try again."
    )
    return outcome


def totp_enrolment_device(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator being enrolled, created on first call."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)
    return device


@transaction.atomic
def totp_enrol_confirm(
    *, request: HttpRequest, user: User, device: TOTPDevice, token: str, client: ClientInfo
) -> Outcome:
    """Confirm a new authenticator with its first code; issue backup codes once."""
    user = _lock_user(user.pk)
    if user.is_locked():
        return Outcome(ok=False, user=user, error=_locked_message(user), locked=True)
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return Outcome(ok=False, user=user, error=_("An authenticator is already enrolled."))
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user, confirmed=False)
    if not device.verify_token(token.strip()):
        outcome = _register_failure(
            user, kind=AuthEvent.Kind.SECOND_FACTOR_FAILED, client=client, detail="enrolment"
        )
        outcome.error = outcome.error or _(
            "That code is not valid. Check the time on your phone and try the newest code."
        )
        return outcome
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    backup = BackupCodeDevice.objects.create(user=user, name=_("Backup codes"), confirmed=True)
    codes = backup.issue_codes(settings.BACKUP_CODE_COUNT)
    otp_login(request, device)
    _register_success(user)
    auth_event_record(kind=AuthEvent.Kind.DEVICE_ENROLLED, client=client, user=user)
    return Outcome(ok=True, user=user, backup_codes=codes)


@transaction.atomic
def user_unlock(*, user: User, actor: User, client: ClientInfo | None = None) -> User:
    user = _lock_user(user.pk)
    user.locked_until = None
    user.failed_sign_in_count = 0
    audit.stamp(user, actor=actor, reason="unlocked by an administrator")
    user.save(update_fields=["locked_until", "failed_sign_in_count"])
    auth_event_record(
        kind=AuthEvent.Kind.UNLOCKED,
        client=client or ClientInfo(),
        user=user,
        detail=f"by {actor.username}",
    )
    return user


def system_user() -> User:
    """The account history names for scheduled and system work."""
    user, _created = User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"first_name": "System", "is_active": False},
    )
    return user


def role_grants_record(*, reason: str = "role grants as installed by migrations") -> int:
    """Give every group whose permissions differ from its latest history row
    (or that has none) a new history row, with its audit entry, by the system
    account; returns how many. Migrations grant each app's permissions to the
    roles without history: run after every migrate, this puts those grants on
    the trail like any other, and ``--records`` then compares the groups'
    permissions with what the trail last recorded."""
    from django.contrib.auth.models import Group

    history = Group.history.model
    snapshots = history._meta.get_field("historicalgroup_permissions").related_model
    stale = []
    for group in Group.objects.prefetch_related("permissions"):
        latest = history.objects.filter(id=group.pk).order_by("-history_date", "-history_id")
        latest = latest.values_list("history_id", flat=True).first()
        recorded = set(
            snapshots.objects.filter(history_id=latest).values_list("permission_id", flat=True)
        )
        if latest is None or recorded != {p.pk for p in group.permissions.all()}:
            stale.append(group)
    if stale:  # (after a test database's flush there are no groups: nothing is written)
        with audit.acting_as(system_user(), origin="command migrate", reason=reason):
            for group in stale:
                group.save()
    return len(stale)


# ---------------------------------------------------------------------------
# Audit trail upkeep
# ---------------------------------------------------------------------------


def audit_verify(*, records: bool = False, record: bool = True, actor: User | None = None):
    """Seal what has ended, check the whole trail and, when it is intact,
    sign a checkpoint of its head outside the database. The outcome goes on
    the trail (unless ``record`` is off)."""
    from core import checkpoints, trail, trailcheck

    trail.seal()
    result = trailcheck.verify(records=records)
    if record:
        trailcheck.record_verification(result, actor=actor)
    if result.intact and result.head_seal:
        result.checkpoint = checkpoints.write(
            seal_seq=result.head_seal,
            seal_mac=result.head_mac,
            total=result.total,
            reason="verification",
        )
    return result


def audit_checkpoint(*, reason: str) -> str:
    """Beat's checkpoint: the seals since the last checkpoint are checked
    first, so that a tampered head is never signed. Returns the checkpoint's
    name, or "" when nothing was written."""
    import logging

    from core import checkpoints, trail, trailcheck

    with audit.acting_as(system_user(), origin="task core.audit_trail_checkpoint"):
        trail.seal()
        result = trailcheck.verify_since_checkpoint()
        if not result.intact:
            logging.getLogger(__name__).error("audit trail: %s", result.summary())
            trailcheck.record_verification(result)
            return ""
    if not result.head_seal:
        return ""
    latest = checkpoints.latest()
    if latest and latest[1].get("seal_seq") == result.head_seal:
        return latest[0]  # nothing sealed since
    return checkpoints.write(
        seal_seq=result.head_seal, seal_mac=result.head_mac, total=result.total, reason=reason
    )
