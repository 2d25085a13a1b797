from django.urls import path

from core import audit_views, views

app_name = "core"

# Mounted at the site root: sign-in and notifications under accounts/, the
# compliance audit trail under audit/.
urlpatterns = [
    path("accounts/sign-in/", views.login_view, name="login"),
    path("accounts/sign-in/verify/", views.verify_view, name="verify"),
    path("accounts/sign-in/enrol/", views.enrol_view, name="enrol"),
    path("accounts/sign-out/", views.logout_view, name="logout"),
    path("accounts/notifications/", views.notifications_view, name="notifications"),
    *audit_views.urlpatterns,
]
