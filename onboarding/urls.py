from django.urls import path

from onboarding import views

app_name = "onboarding"

urlpatterns = [
    path("", views.queue_view, name="queue"),
    path("workflows/", views.workflow_list_view, name="workflows"),
    path("workflows/<id:pk>/", views.workflow_edit_view, name="workflow"),
    path("workflows/<id:pk>/preview/", views.workflow_preview_view, name="workflow_preview"),
    path("workflows/<id:pk>/<str:action>/", views.workflow_action_view, name="workflow_action"),
    path("start/<id:merchant_pk>/", views.application_start_view, name="start"),
    path("applications/<id:pk>/", views.application_detail_view, name="application"),
    path("applications/<id:pk>/decide/", views.decision_view, name="decide"),
    path(
        "applications/<id:pk>/checks/<id:check_pk>/resolve/",
        views.check_resolve_view,
        name="resolve",
    ),
    path("applications/<id:pk>/<str:action>/", views.application_action_view, name="action"),
]
