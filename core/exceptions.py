from django.utils.translation import gettext as _


class DomainError(Exception):
    """A business rule refused the request. The message is shown to the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class TransitionError(DomainError):
    """A state change that the object's current state does not allow."""

    def __init__(self, obj, target: str, message: str | None = None) -> None:
        status = getattr(obj, "status", "?")
        super().__init__(
            message
            or _("Cannot move from %(current)s to %(target)s.")
            % {"current": status, "target": target}
        )
        self.obj = obj
        self.target = target
