from rest_framework.routers import DefaultRouter

from merchants.api import MerchantViewSet

router = DefaultRouter()
router.register("merchants", MerchantViewSet, basename="merchant")

urlpatterns = router.urls
