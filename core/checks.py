from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register(checks.Tags.security)
def field_encryption_key_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A malformed FIELD_ENCRYPTION_KEY fails at startup, not at the first save."""
    from core import crypto

    try:
        crypto.keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="paycrm.E001")]
    return []


@checks.register(checks.Tags.security)
def audit_signing_key_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A malformed AUDIT_SIGNING_KEY (or previous key) fails at startup, not at
    the first entry the trail writes."""
    from core import auditkeys

    try:
        auditkeys.known_ids()
    except ValueError as exc:  # binascii.Error is one
        return [
            checks.Error(
                f"AUDIT_SIGNING_KEY and AUDIT_PREVIOUS_SIGNING_KEYS must be base64 of 32 bytes: "
                f"{exc}",
                id="paycrm.E002",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def audit_signing_key_deploy_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from django.conf import settings

    if settings.AUDIT_SIGNING_KEY:
        return []
    return [
        checks.Warning(
            "AUDIT_SIGNING_KEY is not set: the audit trail's MACs, checkpoints and evidence "
            "bundles use a key derived from SECRET_KEY, so whoever holds SECRET_KEY could "
            "forge them.",
            hint='Set it to base64 of 32 random bytes (README, "Audit trail").',
            id="paycrm.W001",
        )
    ]
