"""Settlement API routes under /api/v1/: each area registers its viewsets."""

from settlements.api import agreements, ledger, runs

MODULES = (ledger, agreements, runs)


def register(router) -> list:
    """Register every area's viewsets on ``router``; return extra URL patterns."""
    extra = []
    for module in MODULES:
        module.register(router)
        extra += module.urlpatterns
    return extra
