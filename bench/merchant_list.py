"""Permission-filtered merchant list: first page and count, beside the raw floor.

Run by hand against a throwaway PostgreSQL database (its name must contain
"bench"; the script migrates it and fills it):

    createdb paycrm_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_bench \
        .venv/bin/python bench/merchant_list.py --merchants 100000 --owners 50

It times what the list page asks the database for a sales user who sees one
owner's share of the book — the selector's permission subquery (guardian's
direct foreign-key table, user and group grants) plus page and count — and the
same rows fetched by a hand-written query on ``owner_id``: the floor.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from core.models import User  # noqa: E402
from merchants import selectors  # noqa: E402
from merchants.models import Merchant, MerchantUserObjectPermission  # noqa: E402


def _timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _fill(merchants: int, owners: int) -> list[User]:
    sales = Group.objects.get(name="sales")
    users = []
    for i in range(owners):
        user, _ = User.objects.get_or_create(username=f"bench_sales{i}")
        user.groups.add(sales)
        users.append(user)
    if Merchant.objects.count() >= merchants:
        return users
    Merchant.objects.all().delete()
    perms = list(Permission.objects.filter(codename__in=["view_merchant", "change_merchant"]))
    batch = 5000
    with transaction.atomic():
        for start in range(0, merchants, batch):
            rows = [
                Merchant(
                    legal_name=f"Bench Merchant {n:07d} Limited",
                    registration_number=f"B{n:09d}",
                    country="HK",
                    business_type="private_company",
                    mcc="5812",
                    owner=users[n % owners],
                )
                for n in range(start, min(start + batch, merchants))
            ]
            created = Merchant.objects.bulk_create(rows)
            MerchantUserObjectPermission.objects.bulk_create(
                MerchantUserObjectPermission(user=m.owner, permission=p, content_object=m)
                for m in created
                for p in perms
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--merchants", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    name = settings.DATABASES["default"]["NAME"]
    if "bench" not in str(name):
        sys.exit("Refusing to run: DATABASE_URL must name a throwaway database containing 'bench'.")
    call_command("migrate", verbosity=0)
    users = _fill(args.merchants, args.owners)
    user = users[0]

    def through_selector():
        qs = selectors.merchant_list(user=user)
        list(qs[:25])
        qs.count()

    def raw_floor():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, legal_name, status FROM merchants_merchant WHERE owner_id = %s "
                "ORDER BY legal_name, id LIMIT 25",
                [user.pk],
            )
            cursor.fetchall()
            cursor.execute("SELECT count(*) FROM merchants_merchant WHERE owner_id = %s", [user.pk])
            cursor.fetchone()

    through_selector()
    raw_floor()
    selector_ms = _timed(through_selector, args.repeat)
    floor_ms = _timed(raw_floor, args.repeat)
    visible = selectors.merchant_list(user=user).count()
    print(f"database: {connection.vendor} {name}")
    print(
        f"merchants: {Merchant.objects.count():,}; owners: {args.owners}; "
        f"visible to user: {visible:,}"
    )
    print(f"selector (permission subquery), page of 25 + count: {selector_ms:.2f} ms median")
    print(f"raw SQL floor on owner_id, page of 25 + count:      {floor_ms:.2f} ms median")


if __name__ == "__main__":
    main()
