"""Roles are Django groups (DESIGN.md §1). Data migrations use these helpers.

Each app's migration grants its own model permissions to the roles, so that a
lower app never needs to know about a higher one.
"""

from django.contrib.auth.management import create_permissions

SALES = "sales"
ONBOARDING = "onboarding"
COMPLIANCE = "compliance"
RISK = "risk"
FINANCE = "finance"
ADMIN = "admin"
ROLES = (SALES, ONBOARDING, COMPLIANCE, RISK, FINANCE, ADMIN)


def ensure_permissions(apps, app_label: str) -> None:
    """Permissions are normally created after migrate; data migrations need them now."""
    app_config = apps.get_app_config(app_label)
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None


def grant_model_perms(apps, app_label: str, grants: dict[str, list[str]]) -> None:
    """``grants`` maps a role to codenames in ``app_label`` (``view_merchant``…)."""
    ensure_permissions(apps, app_label)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in grants.items():
        group, _created = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        missing = set(codenames) - set(perms.values_list("codename", flat=True))
        if missing:
            raise LookupError(f"unknown permissions in {app_label}: {sorted(missing)}")
        group.permissions.add(*perms)


def revoke_model_perms(apps, app_label: str, grants: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in grants.items():
        group = Group.objects.filter(name=role).first()
        if group:
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )
