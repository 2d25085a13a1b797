"""Settlement run over a million transactions, beside one raw GROUP BY of the same rows.

Run by hand against a throwaway PostgreSQL database (its name must contain
"bench"; the script migrates it and fills it, growing the ledger from one
size to the next):

    dropdb --if-exists -h 127.0.0.1 -U postgres paycrm_settle_bench
    createdb -h 127.0.0.1 -U postgres paycrm_settle_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_settle_bench \
        .venv/bin/python bench/settlement_run.py --transactions 100000 1000000

The fill: 150 partners in three levels (10 ISOs, 40 agents, 100 sub-agents),
each with an HKD fee-basis agreement (tiers whole and graduated), 2,000
merchants referred across the tree, and the transactions of October 2026
(85 % HKD, 10 % USD, 5 % SGD, with daily FX rates; a tenth of them refunds or
chargebacks), loaded with COPY because this script measures the run, not the
ingestion (bench/settlement_ingest.py does that).

At each size it times the whole calculation as the Celery task does it —
GROUP BY in the database, FX conversion, the revenue-share arithmetic, and
writing the statements, lines and per-merchant bases with their history and
one audit entry per batch, then the seal — and, beside it, the floor: the
same GROUP BY as a single hand-written SQL statement. The statements the
calculation sends are counted with ``CaptureQueriesContext`` (settings.DEBUG
plays no part), and the audit entries' COPYs, which go to psycopg directly,
beside them; the count must not grow with the ledger. Then it recalculates
the same run (clearing the first results) and counts that too. Between
sizes the run tables are emptied with TRUNCATE (bench database, superuser).
"""

import argparse
import collections
import os
import random
import re
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

from bench.common import code_since, code_state

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from core import trail  # noqa: E402
from core.models import AuditEntry, AuditSeal, User  # noqa: E402
from merchants.models import Merchant, Partner  # noqa: E402
from settlements.models import (  # noqa: E402
    FxRate,
    MerchantBasis,
    SettlementRun,
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
    """Empty the run tables (bench database; TRUNCATE fires no row trigger)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE settlements_statementline, settlements_merchantbasis, "
            "settlements_settlementexport, settlements_statement, "
            "settlements_settlementapproval, settlements_adjustment, settlements_settlementrun"
        )


class _CopyCount:
    """Counts the audit trail's COPY statements, which bypass Django's cursor."""

    def __init__(self):
        self.statements = 0
        self._original = trail._copy  # the name core.trail._write streams entries through

    def __call__(self, entries):
        self.statements += 1
        return self._original(entries)

    def __enter__(self):
        trail._copy = self
        return self

    def __exit__(self, *exc):
        trail._copy = self._original
        return False


class _SealCount:
    """Counts the statements of the sealer after each commit: how many it
    sends depends on the transactions running elsewhere in the cluster when
    it looks (it stops early when none of its entries' transactions has
    ended below the oldest one still running), not on the run's size."""

    def __init__(self):
        self.statements = 0
        self.calls = 0
        self._original = trail.seal

    def __call__(self):
        before = len(connection.queries_log)
        try:
            return self._original()
        finally:
            self.calls += 1
            self.statements += len(connection.queries_log) - before

    def __enter__(self):
        trail.seal = self
        return self

    def __exit__(self, *exc):
        trail.seal = self._original
        return False


_SHAPE_LITERALS = re.compile(r"'(?:[^']|'')*'|\"s\d+_x\d+\"|\b\d+(?:\.\d+)?\b")
_SHAPE_LISTS = re.compile(r"\((?:\?|%s)(?:,\s*(?:\?|%s))+\)")


def _measured(action) -> dict:
    """Seconds, statements by kind, COPYs, entries and seals written by ``action()``."""
    entries_before, seals_before = AuditEntry.objects.count(), AuditSeal.objects.count()
    # CaptureQueriesContext slices Django's query log, a deque of 9,000 by
    # default: a longer or fuller log would miscount. An emptied, larger one.
    connection.queries_log = collections.deque(maxlen=1_000_000)
    with (
        CaptureQueriesContext(connection) as queries,
        _CopyCount() as copies,
        _SealCount() as sealer,
    ):
        start = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - start
    captured = queries.captured_queries  # a copy: the log is emptied below
    kinds: dict[str, int] = {}
    for query in captured:
        word = query["sql"].lstrip().split(None, 1)[0].upper() if query["sql"].strip() else "?"
        kinds[word] = kinds.get(word, 0) + 1
    shapes: dict[str, int] = {}
    for query in captured:
        shape = _SHAPE_LITERALS.sub("?", query["sql"])
        shape = _SHAPE_LISTS.sub("(...)", shape)[:160]
        shapes[shape] = shapes.get(shape, 0) + 1
    connection.queries_log.clear()
    return {
        "result": result,
        "seconds": seconds,
        "shapes": sorted(shapes.items(), key=lambda kv: -kv[1]),
        "queries": len(captured),
        "kinds": kinds,
        "copies": copies.statements,
        "sealer": sealer.statements,
        "seal_calls": sealer.calls,
        "entries": AuditEntry.objects.count() - entries_before,
        "seals": AuditSeal.objects.count() - seals_before,
    }


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


def _calculate(actor: User) -> SettlementRun:
    run = runs.settlement_run_create(
        actor=actor, period_start=PERIOD[0], period_end=PERIOD[1], currency="HKD"
    )
    # Without REDIS_URL the task runs eagerly when this commits: the whole calculation.
    runs.settlement_run_calculate(actor=actor, run=run)
    run.refresh_from_db()
    return run


def _recalculate(actor: User, run: SettlementRun) -> SettlementRun:
    runs.settlement_run_calculate(actor=actor, run=run)
    run.refresh_from_db()
    return run


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{n} {word}" for word, n in sorted(kinds.items(), key=lambda kv: -kv[1]))


def _size(
    actor: User,
    merchant_ids: list[int],
    partners: list[Partner],
    size: int,
    detail: int,
    recalculate: bool,
) -> dict:
    fill_start = time.perf_counter()
    _transactions(merchant_ids, size)
    fill_s = time.perf_counter() - fill_start
    _reset_runs()
    _floor()  # warm the cache the same way for both
    actor = User.objects.get(pk=actor.pk)  # an empty permission cache at every size
    first = _measured(lambda: _calculate(actor))
    floor_seconds, groups = _floor()
    run = first["result"]
    actor = User.objects.get(pk=actor.pk)
    again = _measured(lambda: _recalculate(actor, run)) if recalculate else None
    run = again["result"] if again else run
    lines = StatementLine.objects.filter(statement__run=run).count()
    bases = MerchantBasis.objects.filter(run=run).count()
    transactions = Transaction.objects.count()
    print(f"--- {transactions:,} transactions (fill {fill_s:.1f} s)")
    print(
        f"run: status {run.status}, {run.transaction_count:,} transactions counted, "
        f"{run.statements.count()} statements, {lines:,} lines, {bases:,} merchant bases"
    )
    print(
        f"totals: basis {run.total_basis} = shares {run.total_share} + retained "
        f"{run.platform_retained} -> {run.total_share + run.platform_retained == run.total_basis}"
    )
    measured = [("settlement run", first), ("recalculation of the same run", again)]
    measured = [(label, m) for label, m in measured if m]
    for label, m in measured:
        print(
            f"{label} (aggregate, convert, calculate, write + history + audit + seal): "
            f"{m['seconds']:.2f} s; {m['queries']} queries ({_kinds(m['kinds'])}; "
            f"{m['sealer']} of them by the sealer in {m['seal_calls']} calls) "
            f"+ {m['copies']} COPY of audit entries; {m['entries']:,} audit entries, "
            f"{m['seals']} seals written"
        )
    if detail:
        for label, m in measured:
            print(f"  most repeated statements of the {label}:")
            for shape, n in m["shapes"][:detail]:
                print(f"    {n:>6} x {shape}")
    print(
        f"raw SQL floor: one GROUP BY (merchant, currency, day), {groups:,} groups: "
        f"{floor_seconds:.2f} s; run / floor: {first['seconds'] / floor_seconds:.1f}x"
    )
    return {
        "transactions": transactions,
        "lines": lines,
        "run_s": first["seconds"],
        "floor_s": floor_seconds,
        "queries": first["queries"] + first["copies"],
        "unsealed_queries": first["queries"] - first["sealer"] + first["copies"],
        "shapes": dict(first["shapes"]),
        "again_s": again["seconds"] if again else float("nan"),
        "again_queries": again["queries"] + again["copies"] if again else "-",
        "status": run.status,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--transactions",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="ledger sizes to run at, in turn (the ledger grows from one to the next)",
    )
    parser.add_argument("--merchants", type=int, default=2_000)
    parser.add_argument(
        "--no-recalculate",
        action="store_true",
        help="skip the recalculation of each run (it clears the first results in bulk first)",
    )
    parser.add_argument(
        "--detail", type=int, default=8, help="how many of the most repeated statements to show"
    )
    args = parser.parse_args()
    code_at_start = code_state()
    name = settings.DATABASES["default"]["NAME"]
    if "bench" not in str(name) or connection.vendor != "postgresql":
        sys.exit(
            "Refusing to run: DATABASE_URL must name a PostgreSQL database containing 'bench'."
        )
    settings.DEBUG = False  # the counts come from CaptureQueriesContext, not DEBUG's log
    call_command("migrate", verbosity=0)
    actor, _ = User.objects.get_or_create(username="bench_finance")
    actor.groups.add(Group.objects.get(name="finance"))
    actor = User.objects.get(pk=actor.pk)  # fresh permission cache
    fill_start = time.perf_counter()
    with transaction.atomic():
        partners = _partners(actor)
        merchant_ids = _merchants(actor, partners, args.merchants)
    print(f"database: {connection.vendor} {name}; {code_at_start}; {os.cpu_count()} CPUs")
    print(
        f"partners and merchants (once): {time.perf_counter() - fill_start:.1f} s; "
        f"merchants: {len(merchant_ids):,}; partners: {len(partners)} in 3 levels"
    )
    results = [
        _size(actor, merchant_ids, partners, size, args.detail, not args.no_recalculate)
        for size in sorted(set(args.transactions))
    ]
    print()
    head = (
        f"{'transactions':>12} {'lines':>6} {'run s':>7} {'floor s':>8} {'run/floor':>9} "
        f"{'queries':>7} {'recalc s':>8} {'recalc queries':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['transactions']:>12,} {r['lines']:>6,} {r['run_s']:>7.2f} {r['floor_s']:>8.2f} "
            f"{r['run_s'] / r['floor_s']:>8.1f}x {r['queries']:>7} {r['again_s']:>8.2f} "
            f"{r['again_queries']:>14}"
        )
    code = code_since(code_at_start)
    if code != code_at_start:
        print(f"production code: {code}")
    load = os.getloadavg()
    print(f"load average at the end (1/5/15 min): {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}")
    counts = {r["queries"] for r in results}
    print(
        "queries of the calculation (incl. audit COPYs) the same at every size: "
        + ("yes" if len(counts) == 1 else f"NO ({sorted(counts)})")
    )
    counts = {r["unsealed_queries"] for r in results}
    print(
        "the same without the sealer's: "
        + ("yes" if len(counts) == 1 else f"NO ({sorted(counts)})")
        + f" ({', '.join(str(r['unsealed_queries']) for r in results)})"
    )
    for r in results[1:]:
        base = results[0]["shapes"]
        for shape in sorted(set(base) | set(r["shapes"])):
            if base.get(shape, 0) != r["shapes"].get(shape, 0):
                print(
                    f"  {base.get(shape, 0)} at {results[0]['transactions']:,}, "
                    f"{r['shapes'].get(shape, 0)} at {r['transactions']:,}: {shape}"
                )
    largest = results[-1]
    print(
        f"run < 5x the GROUP BY floor at the largest size ({largest['transactions']:,}): "
        + ("yes" if largest["run_s"] < 5 * largest["floor_s"] else "NO")
        + f" ({largest['run_s'] / largest['floor_s']:.1f}x)"
    )


if __name__ == "__main__":
    main()
