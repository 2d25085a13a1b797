from django.urls import path

from onboarding import views

app_name = "onboarding"

urlpatterns = [
    path("", views.queue_view, name="queue"),
    path("start/<int:merchant_pk>/", views.application_start_view, name="start"),
    path("applications/<int:pk>/", views.application_detail_view, name="application"),
    path("applications/<int:pk>/decide/", views.decision_view, name="decide"),
    path(
        "applications/<int:pk>/checks/<int:check_pk>/resolve/",
        views.check_resolve_view,
        name="resolve",
    ),
    path("applications/<int:pk>/<str:action>/", views.application_action_view, name="action"),
]
