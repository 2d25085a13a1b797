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
