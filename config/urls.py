from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.dashboard import dashboard_view
from core.views import healthz_view

urlpatterns = [
    path("", dashboard_view, name="home"),
    path("", include("core.urls")),
    path("merchants/", include("merchants.urls")),
    path("onboarding/", include("onboarding.urls")),
    path("settlements/", include("settlements.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", healthz_view, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
]
