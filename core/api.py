"""API plumbing shared by every app: auth check, pagination, error shape."""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, pagination, permissions, status
from rest_framework.response import Response

from core.exceptions import DomainError, TransitionError


class IsVerified(permissions.BasePermission):
    """A signed-in, active user whose session passed the second factor."""

    message = "Sign in with your second factor first."

    def has_permission(self, request, view) -> bool:
        user = request.user
        is_verified = getattr(user, "is_verified", None)
        return bool(
            user and user.is_authenticated and user.is_active and is_verified and is_verified()
        )


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def _validation_detail(exc: DjangoValidationError) -> dict | list:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): [str(m) for m in msgs]
            for field, msgs in exc.message_dict.items()
        }
    return {"non_field_errors": list(exc.messages)}


def exception_handler(exc, context):
    """DRF errors, plus the domain's: ValidationError → 400 with field errors,
    TransitionError → 409, DomainError → 400, PermissionDenied → 403."""
    # Imported here: rest_framework.views reads this module's classes from settings.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DjangoValidationError):
        return Response(_validation_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, TransitionError):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DomainError):
        key = exc.field or "non_field_errors"
        return Response({key: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)
