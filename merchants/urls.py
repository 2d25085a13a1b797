from django.urls import include, path

from merchants import views

app_name = "merchants"

urlpatterns = [
    path("", include("merchants.io_urls")),
    path("", views.merchant_list_view, name="list"),
    path("new/", views.merchant_create_view, name="create"),
    path("<int:pk>/", views.merchant_detail_view, name="detail"),
    path("<int:pk>/edit/", views.merchant_edit_view, name="edit"),
]
