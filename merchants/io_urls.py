from django.urls import path  # noqa: F401

# Import and export routes (merchants:import…, merchants:export); see io_views.py.
urlpatterns: list = []
