from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from core import services
from core.models import AuditEntry, AuthEvent, Team, User


@admin.register(User)
class PayCRMUserAdmin(SimpleHistoryAdmin, UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_active", "locked_until")
    list_filter = ("is_active", "is_staff", "groups")
    readonly_fields = ("locked_until", "last_login", "date_joined")
    actions = ["unlock_accounts"]

    @admin.action(description=_("Unlock selected accounts"), permissions=["change"])
    def unlock_accounts(self, request, queryset):
        client = services.ClientInfo.from_request(request)
        for user in queryset:
            services.user_unlock(user=user, actor=request.user, client=client)
        messages.success(request, _("%(n)d account(s) unlocked.") % {"n": queryset.count()})


@admin.register(Team)
class TeamAdmin(SimpleHistoryAdmin):
    list_display = ("name", "manager", "group")
    search_fields = ("name",)


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "username", "ip_address", "detail")
    list_filter = ("kind",)
    search_fields = ("username", "ip_address")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: no add, change or delete for anyone, superusers included.

    The compliance pages (/audit/) are the place to read the trail; this
    list is here so that the admin site offers no way to alter it.
    """

    list_display = ("id", "created_at", "actor_label", "action", "model", "object_label", "key_id")
    list_filter = ("action", "actor_kind")
    search_fields = ("object_label", "actor_label")
    show_full_result_count = False  # no COUNT(*) over millions of entries

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
