from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


class PayCRMAdminSite(OTPAdminSite):
    """Django admin that requires a verified second factor.

    Named ``admin`` (OTPAdminSite defaults to ``otpadmin``) so that
    ``reverse("admin:...")`` keeps working. Sign-in goes through the project's
    own pages, which enforce lockout and enrolment.
    """

    site_header = _("PayCRM administration")
    site_title = _("PayCRM admin")

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request, extra_context=None):
        target = request.GET.get("next") or reverse("admin:index")
        return redirect(f"{reverse('core:login')}?{urlencode({'next': target})}")
