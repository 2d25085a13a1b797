"""Settlement run over a million transactions, beside one raw GROUP BY of the same rows.

Run by hand against a throwaway PostgreSQL database (its name must contain
"bench"; the script migrates it and fills it once):

    createdb -h 127.0.0.1 -U postgres paycrm_settle_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_settle_bench \
        .venv/bin/python bench/settlement_run.py --transactions 1000000

The fill: 150 partners in three levels (10 ISOs, 40 agents, 100 sub-agents),
each with an HKD fee-basis agreement (tiers whole and graduated), 2,000
merchants referred across the tree, and the transactions of October 2026
(85 % HKD, 10 % USD, 5 % SGD, with daily FX rates; a tenth of them refunds or
chargebacks), loaded with COPY because this script measures the run, not the
ingestion (bench/settlement_ingest.py does that).

It then times the whole calculation as the Celery task does it — GROUP BY in
the database, FX conversion, the revenue-share arithmetic, and writing the
statements, lines and per-merchant bases with their history — and, beside it,
the floor: the same GROUP BY as a single hand-written SQL statement.
"""

import argparse
import os
import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from core.models import User  # noqa: E402
from merchants.models import Merchant, Partner  # noqa: E402
from settlements.models import (  # noqa: E402
    FxRate,
    MerchantBasis,
    SettlementApproval,
    SettlementRun,
    Statement,
    StatementLine,
    Transaction,
    TransactionSource,
)
from settlements.services import agreements, runs  # noqa: E402

HK = ZoneInfo("Asia/Hong_Kong")
PERIOD = (date(2026, 10, 1), date(2026, 10, 31))
COLUMNS = (
    "created_at", "updated_at", "source_id", "external_id", "merchant_id", "kind", "status",
    "amount", "fee", "cost", "currency", "payment_method", "card_country", "customer_ref",
    "payer_email", "payer_phone", "card_fingerprint", "occurred_at",
)  # fmt: skip


def _partners(actor: User) -> list[Partner]:
    if Partner.objects.filter(name__startswith="Bench ").count() >= 150:
        return list(Partner.objects.filter(name__startswith="Bench "))
    isos = [Partner.objects.create(name=f"Bench ISO {i:02d}", kind="iso") for i in range(10)]
    agents = [
        Partner.objects.create(name=f"Bench Agent {i:02d}", parent=isos[i % 10]) for i in range(40)
    ]
    subs = [
        Partner.objects.create(name=f"Bench Sub {i:03d}", parent=agents[i % 40]) for i in range(100)
    ]
    start = date(2026, 1, 1)
    for level, group, mode, tiers in (
        ("iso", isos, "graduated", [(0, 4000), (2_000_000, 4400), (10_000_000, 4800)]),
        ("agent", agents, "whole", [(0, 3000), (1_000_000, 3300)]),
        ("sub", subs, "whole", [(0, 2000), (300_000, 2200)]),
    ):
        for partner in group:
            agreements.agreement_create(
                actor=actor,
                partner=partner,
                basis="fee",
                tier_mode=mode,
                currency="HKD",
                valid_from=start,
                tiers=[{"from_volume": v, "rate_bps": r} for v, r in tiers],
                notes=f"bench {level}",
            )
    return isos + agents + subs


def _merchants(owner: User, partners: list[Partner], count: int) -> list[int]:
    existing = list(
        Merchant.objects.filter(legal_name__startswith="Bench M").values_list("pk", flat=True)
    )
    if len(existing) >= count:
        return existing[:count]
    rng = random.Random(7)
    subs = [p for p in partners if p.name.startswith("Bench Sub")]
    rows = [
        Merchant(
            legal_name=f"Bench M{n:05d} Limited",
            registration_number=f"BM{n:08d}",
            country="HK",
            business_type="private_company",
            mcc="5812",
            owner=owner,
            status="active",
            # Most merchants come through sub-agents; some straight from above.
            partner=rng.choice(subs) if rng.random() < 0.8 else rng.choice(partners),
        )
        for n in range(count)
    ]
    return [m.pk for m in Merchant.objects.bulk_create(rows, batch_size=1000)]


def _transactions(merchant_ids: list[int], count: int) -> None:
    have = Transaction.objects.count()
    if have >= count:
        return
    source, _ = TransactionSource.objects.get_or_create(code="bench", defaults={"name": "Bench"})
    rng = random.Random(11)
    start = datetime(2026, 10, 1, tzinfo=HK)
    now = datetime.now(tz=HK).isoformat()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY settlements_transaction ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for n in range(have, count):
                roll = rng.random()
                kind = "payment" if roll < 0.9 else ("refund" if roll < 0.97 else "chargeback")
                currency = rng.choices(("HKD", "USD", "SGD"), (85, 10, 5))[0]
                amount = Decimal(rng.randint(1000, 500000)) / 100
                fee = (amount * Decimal("0.025")).quantize(Decimal("0.01"))
                cost = (amount * Decimal("0.012")).quantize(Decimal("0.01"))
                sign = -1 if kind != "payment" else 1
                at = start + timedelta(seconds=rng.randint(0, 31 * 86400 - 1))
                copy.write_row(
                    (now, now, source.pk, f"bench_{n:09d}", rng.choice(merchant_ids), kind,
                     "settled", sign * amount, sign * fee, sign * cost, currency,
                     "card_domestic", "HK", "", "", "", "", at.isoformat())
                )  # fmt: skip
    for day in range(31):
        on = PERIOD[0] + timedelta(days=day)
        FxRate.objects.get_or_create(rate_on=on, base="USD", quote="HKD", defaults={"rate": "7.79"})
        FxRate.objects.get_or_create(rate_on=on, base="SGD", quote="HKD", defaults={"rate": "5.82"})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _reset_runs() -> None:
    StatementLine.objects.all().delete()
    MerchantBasis.objects.all().delete()
    Statement.objects.all().delete()
    SettlementApproval.objects.all().delete()
    SettlementRun.objects.all().delete()


def _floor() -> tuple[float, int]:
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.merchant_id, t.currency, (t.occurred_at AT TIME ZONE %s)::date, count(*), "
            "sum(t.amount), sum(t.fee), sum(t.cost) FROM settlements_transaction t "
            "JOIN merchants_merchant m ON m.id = t.merchant_id "
            "WHERE t.status = 'settled' AND t.occurred_at >= %s AND t.occurred_at < %s "
            "AND m.partner_id IS NOT NULL GROUP BY 1, 2, 3",
            [
                settings.TIME_ZONE,
                datetime(2026, 10, 1, tzinfo=HK),
                datetime(2026, 11, 1, tzinfo=HK),
            ],
        )
        rows = len(cursor.fetchall())
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    args = parser.parse_args()
    name = settings.DATABASES["default"]["NAME"]
    if "bench" not in str(name) or connection.vendor != "postgresql":
        sys.exit(
            "Refusing to run: DATABASE_URL must name a PostgreSQL database containing 'bench'."
        )
    call_command("migrate", verbosity=0)
    actor, _ = User.objects.get_or_create(username="bench_finance")
    actor.groups.add(Group.objects.get(name="finance"))
    actor = User.objects.get(pk=actor.pk)  # fresh permission cache
    fill_start = time.perf_counter()
    with transaction.atomic():
        partners = _partners(actor)
        merchant_ids = _merchants(actor, partners, args.merchants)
    _transactions(merchant_ids, args.transactions)
    print(f"fill (once): {time.perf_counter() - fill_start:.1f} s")
    _reset_runs()

    _floor()  # warm the cache the same way for both
    start = time.perf_counter()
    run = runs.settlement_run_create(
        actor=actor, period_start=PERIOD[0], period_end=PERIOD[1], currency="HKD"
    )
    # Without REDIS_URL the task runs eagerly when this commits: the whole calculation.
    runs.settlement_run_calculate(actor=actor, run=run)
    run_seconds = time.perf_counter() - start
    run.refresh_from_db()
    floor_seconds, groups = _floor()

    lines = StatementLine.objects.filter(statement__run=run).count()
    print(f"database: {connection.vendor} {name}")
    print(
        f"transactions: {Transaction.objects.count():,}; merchants: {len(merchant_ids):,}; "
        f"partners: {len(partners)} in 3 levels"
    )
    print(
        f"run: status {run.status}, {run.transaction_count:,} transactions counted, "
        f"{run.statements.count()} statements, {lines:,} lines"
    )
    print(
        f"totals: basis {run.total_basis} = shares {run.total_share} + retained "
        f"{run.platform_retained} -> {run.total_share + run.platform_retained == run.total_basis}"
    )
    print(f"settlement run (aggregate, convert, calculate, write + history): {run_seconds:.2f} s")
    print(f"raw SQL floor: one GROUP BY (merchant, currency, day), {groups:,} groups: "
          f"{floor_seconds:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
