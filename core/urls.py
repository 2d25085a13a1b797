from django.urls import path

from core import audit_views, views

app_name = "core"

urlpatterns = [
    path("sign-in/", views.login_view, name="login"),
    path("sign-in/verify/", views.verify_view, name="verify"),
    path("sign-in/enrol/", views.enrol_view, name="enrol"),
    path("sign-out/", views.logout_view, name="logout"),
    path("notifications/", views.notifications_view, name="notifications"),
    *audit_views.urlpatterns,
]
