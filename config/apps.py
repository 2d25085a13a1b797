from django.contrib.admin.apps import AdminConfig


class PayCRMAdminConfig(AdminConfig):
    """The admin app with the OTP-protected site as its default site."""

    default_site = "core.admin_site.PayCRMAdminSite"
