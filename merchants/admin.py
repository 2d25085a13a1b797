from django.contrib import admin
from django.core.exceptions import PermissionDenied
from guardian.admin import GuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from core import permissions
from merchants import services
from merchants.models import Merchant, Partner


@admin.register(Merchant)
class MerchantAdmin(GuardedModelAdminMixin, SimpleHistoryAdmin):
    list_display = ("legal_name", "trading_name", "country", "status", "risk_level", "owner", "mid")
    list_filter = ("status", "risk_level", "country")
    search_fields = ("legal_name", "trading_name", "registration_number", "mid")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    # Status, risk level and MID change through their services, with the
    # rights of the role that may make each move, never in the admin.
    readonly_fields = ("status", "risk_level", "mid")

    def get_queryset(self, request):
        # The admin is a door too: it lists what the permission selectors allow.
        return permissions.visible(request.user, Merchant).select_related("owner")

    def save_model(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.EDITABLE_FIELDS
        }
        if change:
            if not permissions.can(request.user, "change", obj):
                raise PermissionDenied
            services.merchant_update(merchant=obj, actor=request.user, reason="admin", **data)
        else:
            saved = services.merchant_create(actor=request.user, reason="admin", **data)
            obj.pk = saved.pk


@admin.register(Partner)
class PartnerAdmin(SimpleHistoryAdmin):
    list_display = ("name", "kind", "parent", "status")
    list_filter = ("kind", "status")
    search_fields = ("name",)
