"""Every door — list page, detail, edit, API, admin — answers the same question."""

import pytest
from django.urls import reverse

from core import permissions
from merchants import selectors, services
from merchants.models import Merchant, MerchantUserObjectPermission
from tests.factories.core import TeamFactory, UserFactory
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(sales1, sales2):
    return {
        "mine": MerchantFactory.create_batch(3, owner=sales1),
        "theirs": MerchantFactory.create_batch(2, owner=sales2),
    }


def test_selector_returns_own_merchants_and_hides_others(book, sales1, sales2):
    visible = set(selectors.merchant_list(user=sales1))
    assert visible == set(book["mine"])
    assert set(selectors.merchant_list(user=sales2)) == set(book["theirs"])


def test_sales_user_list_page_shows_only_their_merchants(web, book, sales1):
    page = web(sales1).get(reverse("merchants:list")).content.decode()
    for merchant in book["mine"]:
        assert merchant.legal_name in page
    for merchant in book["theirs"]:
        assert merchant.legal_name not in page


def test_sales_user_gets_404_for_other_sales_users_merchant_on_every_page(web, book, sales1):
    other = book["theirs"][0]
    client = web(sales1)
    assert client.get(reverse("merchants:detail", args=[other.pk])).status_code == 404
    assert client.get(reverse("merchants:edit", args=[other.pk])).status_code == 404
    response = client.post(
        reverse("merchants:edit", args=[other.pk]), {"legal_name": "Hijacked Limited"}
    )
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.legal_name != "Hijacked Limited"


def test_sales_user_gets_404_for_other_sales_users_merchant_in_the_api(api, book, sales1):
    other = book["theirs"][0]
    client = api(sales1)
    listed = client.get("/api/v1/merchants/").json()
    assert {row["id"] for row in listed["results"]} == {m.pk for m in book["mine"]}
    assert client.get(f"/api/v1/merchants/{other.pk}/").status_code == 404
    patch = client.patch(
        f"/api/v1/merchants/{other.pk}/", {"legal_name": "Hijacked"}, format="json"
    )
    assert patch.status_code == 404
    put = client.put(f"/api/v1/merchants/{other.pk}/", {"legal_name": "Hijacked"}, format="json")
    assert put.status_code == 404
    other.refresh_from_db()
    assert other.legal_name != "Hijacked"


def test_search_cannot_reveal_other_merchants(api, web, book, sales1):
    other = book["theirs"][0]
    assert api(sales1).get("/api/v1/merchants/", {"q": other.legal_name}).json()["count"] == 0
    page = web(sales1).get(reverse("merchants:list"), {"q": other.registration_number})
    assert other.legal_name not in page.content.decode()


def test_admin_changelist_is_permission_filtered(web, book, sales1):
    sales1.is_staff = True
    sales1.save()
    # staff flag alone opens nothing in the admin: no model permission, no rows
    assert web(sales1).get("/admin/merchants/merchant/").status_code == 403


def test_compliance_sees_every_merchant_but_cannot_edit(web, api, book, compliance1):
    merchant = book["theirs"][0]
    assert selectors.merchant_list(user=compliance1).count() == 5
    assert web(compliance1).get(reverse("merchants:detail", args=[merchant.pk])).status_code == 200
    assert web(compliance1).get(reverse("merchants:edit", args=[merchant.pk])).status_code == 403
    patch = api(compliance1).patch(
        f"/api/v1/merchants/{merchant.pk}/", {"legal_name": "Changed"}, format="json"
    )
    assert patch.status_code == 403


def test_team_members_share_their_teams_merchants(sales1, db):
    team = TeamFactory()
    colleague = UserFactory(roles=["sales"])
    colleague.groups.add(team.group)
    merchant = MerchantFactory(owner=sales1, team=team, actor=sales1)
    assert merchant in selectors.merchant_list(user=colleague)
    assert permissions.can(colleague, "change", merchant)
    assert not permissions.can(UserFactory(roles=["sales"]), "view", merchant)


def test_ownership_change_moves_object_permissions(admin1, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    # when
    services.merchant_update(merchant=merchant, actor=admin1, owner=sales2)
    # then
    assert merchant not in selectors.merchant_list(user=sales1)
    assert merchant in selectors.merchant_list(user=sales2)
    revoked = MerchantUserObjectPermission.history.filter(
        user=sales1, content_object=merchant, history_type="-"
    )
    assert revoked.count() == 2
    assert {h.history_user for h in revoked} == {admin1}


def test_sales_user_cannot_reassign_through_the_api(api, sales1, sales2):
    merchant = MerchantFactory(owner=sales1)
    response = api(sales1).patch(
        f"/api/v1/merchants/{merchant.pk}/", {"owner": sales2.username}, format="json"
    )
    assert response.status_code == 400
    assert "owner" in response.json()
    merchant.refresh_from_db()
    assert merchant.owner == sales1


def test_inactive_user_sees_nothing(sales1):
    MerchantFactory(owner=sales1)
    sales1.is_active = False
    sales1.save()
    assert not selectors.merchant_list(user=sales1).exists()
    assert Merchant.objects.count() == 1
