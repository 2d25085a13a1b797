import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin
from guardian.mixins import GuardianUserMixin
from guardian.models import GroupObjectPermission, UserObjectPermission
from simple_history import register

from core.audit import HistoricalRecords


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(inherit=True)

    class Meta:
        abstract = True


class User(GuardianUserMixin, AbstractUser):
    """A member of staff. Signs in with a password and a TOTP second factor."""

    failed_sign_in_count = models.PositiveSmallIntegerField(default=0, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True)

    # Password hashes stay out of history; last_login and the failure counter
    # change on every sign-in and are covered by AuthEvent instead.
    history = HistoricalRecords(
        excluded_fields=["password", "last_login", "failed_sign_in_count"],
        m2m_fields=["groups", "user_permissions"],
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username", "pk"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def is_locked(self, now=None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class Team(TimeStampedModel):
    """A sales team. Its members share object permissions through ``group``."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_teams",
    )

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class AuthEvent(TimeStampedModel):
    """Append-only record of sign-in activity (PCI DSS 10.2.1.4, 10.2.1.5)."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
        SECOND_FACTOR_FAILED = "second_factor_failed", _("Second factor failed")
        SECOND_FACTOR_VERIFIED = "second_factor_verified", _("Second factor verified")
        DEVICE_ENROLLED = "device_enrolled", _("Authenticator enrolled")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        LOCKED_OUT = "locked_out", _("Account locked")
        UNLOCKED = "unlocked", _("Account unlocked")
        SIGN_OUT = "sign_out", _("Signed out")

    kind = models.CharField(max_length=30, choices=Kind)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="auth_events",
    )
    # What was typed, kept for failures against unknown usernames.
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="authevent_user_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username} {self.created_at:%Y-%m-%d %H:%M:%S}"


def _hash_backup_code(code: str, salt: bytes) -> str:
    # Backup codes carry ~50 bits, under ASVS 6.5.2's 112-bit bar for plain
    # hashing, so they get a salted, slow hash.
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, 120_000)
    return f"{salt.hex()}${digest.hex()}"


def normalise_backup_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


class BackupCodeDevice(ThrottlingMixin, Device):
    """Single-use backup codes, stored hashed.

    django-otp's own static tokens are kept in plaintext; these are not.
    """

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("backup code set")

    def get_throttle_factor(self) -> int:
        return 1

    def issue_codes(self, count: int) -> list[str]:
        """Replace all codes with ``count`` fresh ones and return them in clear, once."""
        self.codes.all().delete()
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        plain = []
        for _i in range(count):
            raw = "".join(secrets.choice(alphabet) for _j in range(10))
            plain.append(f"{raw[:5]}-{raw[5:]}")
            BackupCode.objects.create(
                device=self, code_hash=_hash_backup_code(raw, secrets.token_bytes(16))
            )
        return plain

    def verify_token(self, token) -> bool:
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        code = normalise_backup_code(str(token))
        if len(code) != 10:
            return False
        for backup in self.codes.filter(used_at__isnull=True).select_for_update():
            salt_hex, _digest = backup.code_hash.split("$", 1)
            candidate = _hash_backup_code(code, bytes.fromhex(salt_hex))
            if hmac.compare_digest(candidate, backup.code_hash):
                backup.used_at = timezone.now()
                backup.save(update_fields=["used_at"])
                self.throttle_reset()
                return True
        self.throttle_increment()
        return False


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=200, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    used_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["code_hash"])

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"backup code #{self.pk} ({'used' if self.used_at else 'unused'})"


# Groups and guardian's generic permission rows are third-party models: grants
# and revocations must still be on record.
register(Group, app="core", records_class=HistoricalRecords, m2m_fields=["permissions"])
register(UserObjectPermission, app="core", records_class=HistoricalRecords)
register(GroupObjectPermission, app="core", records_class=HistoricalRecords)


class SensitiveAccess(TimeStampedModel):
    """A read of a sensitive value in clear (PCI DSS 10.2.1.1): who, what, from where."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sensitive_reads"
    )
    object_label = models.CharField(max_length=100)  # "merchants.bankaccount"
    object_id = models.CharField(max_length=64)
    field = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["object_label", "object_id"], name="sensitive_access_obj")]

    def __str__(self) -> str:
        return f"{self.user} read {self.object_label}#{self.object_id}.{self.field}"


class Notification(TimeStampedModel):
    """An in-app message for one user (the bell), often mirrored by e-mail."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.title


class AuditEntry(models.Model):
    """One line of the compliance trail (PCI DSS 10.2): who did what to which
    record, when, from where and why, with the fields it changed.

    An entry is written once, complete: the application computes ``mac``
    (HMAC-SHA256 under a key derived from ``AUDIT_SIGNING_KEY``, named by
    ``key_id``) over every column before inserting it. The rows an entry
    proves (a history row, or a batch of ledger rows) are named by
    ``row_model``/``row_ids`` with ``row_digest``, a keyed digest over
    their canonical content. Chain order is kept beside the entries, in
    :class:`AuditSeal`. On PostgreSQL triggers make the table insert-only and
    stamp ``txid`` (the writing transaction) on the way in.

    ``seq``/``prev_hash``/``hash`` belong to entries written before the
    keyed format (an unkeyed SHA-256 chain); they are verified as they are and
    anchored by an authenticated entry written when the format changed.
    """

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        DELETE = "delete", _("Deleted")
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Sign-in failed")
        SECOND_FACTOR_FAILED = "second_factor_failed", _("Second factor failed")
        SECOND_FACTOR_VERIFIED = "second_factor_verified", _("Second factor verified")
        DEVICE_ENROLLED = "device_enrolled", _("Authenticator enrolled")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        LOCKED_OUT = "locked_out", _("Account locked")
        UNLOCKED = "unlocked", _("Account unlocked")
        SIGN_OUT = "sign_out", _("Signed out")
        PERMISSION_GRANTED = "permission_granted", _("Permission granted")
        PERMISSION_REVOKED = "permission_revoked", _("Permission revoked")
        REVEAL = "reveal", _("Sensitive value revealed")
        EXPORT = "export", _("Exported")
        VERIFY = "verify", _("Trail verified")
        ARCHIVE = "archive", _("Trail archived")
        REANCHOR = "reanchor", _("Earlier trail anchored")

    class ActorKind(models.TextChoices):
        USER = "user", _("User")
        API_KEY = "api_key", _("API key")
        SYSTEM = "system", _("System")

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,  # attribution outlives the account
        db_constraint=False,
        db_index=False,  # the (actor, -id) index below serves it
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind, default=ActorKind.USER)
    origin = models.CharField(max_length=255, blank=True)  # "web 192.0.2.1", "task x.y"
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=30, choices=Action)
    success = models.BooleanField(default=True)
    model = models.CharField(max_length=100)  # "merchants.merchant"
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    merchant_id = models.BigIntegerField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)  # {"field": [before, after]}
    reason = models.CharField(max_length=300, blank=True)
    # The rows this entry proves: ``[[first id, last id], ...]`` of
    # ``row_model``, and a keyed digest over their content.
    row_model = models.CharField(max_length=100, blank=True)
    row_ids = models.JSONField(default=list, blank=True)
    row_first = models.BigIntegerField(null=True, blank=True)
    row_last = models.BigIntegerField(null=True, blank=True)
    row_digest = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=16, blank=True)
    mac = models.CharField(max_length=64, blank=True)
    # PostgreSQL: the writing transaction's id, stamped by the insert trigger;
    # the sealer covers every entry of the transactions that have ended.
    txid = models.BigIntegerField(null=True, blank=True, editable=False)
    # Entries of the earlier, unkeyed chain.
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("audit entries")
        constraints = [
            models.UniqueConstraint(
                fields=["seq"], condition=models.Q(seq__isnull=False), name="audit_legacy_seq"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant_id", "-id"], name="audit_merchant"),
            models.Index(fields=["model", "object_id", "-id"], name="audit_object"),
            models.Index(fields=["actor", "-id"], name="audit_actor"),
            models.Index(fields=["action", "-id"], name="audit_action"),
            models.Index(fields=["created_at"], name="audit_time"),
            models.Index(fields=["txid", "id"], name="audit_txid"),
            models.Index(
                fields=["row_model", "row_last"],
                name="audit_rows",
                condition=models.Q(row_last__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.model}#{self.object_id} by {self.actor_label}"


class AuditSeal(models.Model):
    """One link of the audit trail's chain: the entries of the transactions
    that ended since the previous seal, in order, under a keyed MAC.

    A seal covers every entry whose order key lies in ``[low, high)``: on
    PostgreSQL the writing transaction's id (``high`` is the oldest
    transaction still running when the seal was made, so no entry can join
    the range later), on SQLite the entry id (one writer at a time).
    ``digest`` is SHA-256 over the covered entries' ids and MACs; ``total``
    counts every entry sealed so far, archived ones included. Insert-only.
    """

    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=16)
    low = models.BigIntegerField()
    high = models.BigIntegerField()
    entries = models.PositiveIntegerField()
    total = models.BigIntegerField()
    entry_ids = models.JSONField(default=list)  # [[first, last], ...]
    digest = models.CharField(max_length=64)
    prev_mac = models.CharField(max_length=64, blank=True)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["high"], name="audit_seal_high")]

    def __str__(self) -> str:
        return f"seal {self.seq} ({self.entries} entries)"
