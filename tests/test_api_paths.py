"""Every API path with an object id takes digits only (issue 12 finding 7).

A non-numeric id reached the selectors and answered 500 on 17 operations
(``GET /api/v1/merchants/null,null/``, ``POST /api/v1/settlements/runs/true/approve/``);
a format suffix on an action (``POST /api/v1/transactions/batch.json``) did too.
"""

import re

import pytest

from config import api_urls

pytestmark = pytest.mark.django_db

BAD_IDS = ["null,null", "true", "abc", "1.5", "-1", "%20", "9" * 19]


def _detail_routes() -> list[str]:
    """Each route template with an id in it, as /api/v1/… with {id} markers."""
    routes = []
    for pattern in api_urls.urlpatterns:
        text = str(pattern.pattern)
        if "pk" not in text:
            continue
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        route = route.lstrip("^").rstrip("$").replace("\\.", ".").replace("/?", "/")
        if "{format}" in route:
            continue
        routes.append("/api/v1/" + route)
    return sorted(set(routes))


def test_the_walk_finds_the_detail_routes():
    routes = _detail_routes()
    assert "/api/v1/merchants/{pk}/" in routes
    assert "/api/v1/settlements/runs/{pk}/approve/" in routes
    assert "/api/v1/merchants/{merchant_pk}/contacts/{pk}/" in routes
    assert len(routes) > 20


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_a_non_numeric_id_answers_404_on_every_route(api, admin1, method):
    client = api(admin1)
    client.raise_request_exception = False  # a 500 is counted, not raised
    errors = []
    for route in _detail_routes():
        for bad in BAD_IDS:
            url = route.replace("{pk}", bad).replace("{merchant_pk}", bad)
            response = getattr(client, method)(url, {}, format="json")
            if response.status_code not in (403, 404, 405):  # never 500, never served
                errors.append(f"{method.upper()} {url}: {response.status_code}")
    assert errors == []


def test_a_format_suffix_on_an_action_is_not_a_server_error(api, admin1):
    client = api(admin1)
    client.raise_request_exception = False
    response = client.post("/api/v1/transactions/batch.json", {"items": []}, format="json")
    assert response.status_code < 500
