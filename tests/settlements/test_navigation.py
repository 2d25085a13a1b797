"""Finance finds settlements and transactions in the navigation; sales does not."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _nav_urls(client) -> list[str]:
    response = client.get(reverse("home"))
    return [item["url"] for item in response.context["nav_items"]]


def test_finance_sees_settlements_and_transactions(web, finance1):
    urls = _nav_urls(web(finance1))
    assert reverse("settlements:runs") in urls
    assert reverse("settlements:transactions") in urls


def test_sales_sees_neither(web, sales1):
    urls = _nav_urls(web(sales1))
    assert reverse("settlements:runs") not in urls
    assert reverse("settlements:transactions") not in urls


def test_settlement_pages_keep_settlements_highlighted(web, finance1):
    client = web(finance1)
    for name in ("settlements:agreements", "settlements:fx-rates", "settlements:reconciliations"):
        response = client.get(reverse(name))
        active = [i["url"] for i in response.context["nav_items"] if i["active"]]
        assert active == [reverse("settlements:runs")], name
        assert reverse("settlements:reconciliations") in response.content.decode()
