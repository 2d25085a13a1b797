"""Transaction ingestion through the service, beside a raw COPY of the same rows.

Run by hand against a throwaway PostgreSQL database (its name must contain
"bench"; the script migrates it, empties its ledger and fills it):

    createdb -h 127.0.0.1 -U postgres paycrm_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_bench \\
        .venv/bin/python bench/settlement_ingest.py --rows 1000000

It generates gateway-like items (random external ids, merchants named by id
or MID, amounts as strings, offsets on every time) for ~2,000 merchants and
sends them through ``transactions_ingest`` in batches of 1,000: checking,
merchant lookup, insert, history and commit, as the batch API would. Only
the service calls are timed, not the generation of the items. Then the same
batches are sent again (every item already present), and the same rows are
loaded with psycopg's COPY into empty tables: one shaped like the ledger
without indexes (the floor), then the same writes as the service (a ledger
table and a history table with all their indexes and checks), without the
service's checking, conflict handling and foreign keys.
"""

import argparse
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from core import audit  # noqa: E402
from core import services as core_services  # noqa: E402
from core.models import User  # noqa: E402
from merchants.models import Merchant  # noqa: E402
from settlements.models import Transaction, TransactionSource  # noqa: E402
from settlements.services import ingestion  # noqa: E402

BATCH = ingestion.MAX_ITEMS
HK = timezone(timedelta(hours=8))
METHODS = ["card_domestic", "card_international", "alipay", "wechat_pay", "fps", "octopus"]
COUNTRIES = ["HK", "HK", "HK", "CN", "SG", "US", "GB", "JP", "TW", "MO"]
KINDS = [("payment", 90), ("refund", 7), ("chargeback", 2), ("chargeback_reversal", 1)]
CURRENCIES = [("HKD", 80), ("USD", 15), ("SGD", 5)]
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _merchants(count: int) -> list[tuple[int, str]]:
    """(id, MID) of ``count`` active bench merchants, created in bulk when missing."""
    owner, _ = User.objects.get_or_create(username="bench_owner")
    existing = Merchant.objects.filter(registration_number__startswith="SIB")
    if existing.count() < count:
        have = set(existing.values_list("registration_number", flat=True))
        Merchant.objects.bulk_create(
            [
                Merchant(
                    legal_name=f"Bench Shop {n:05d} Limited",
                    registration_number=f"SIB{n:07d}",
                    country="HK",
                    business_type="private_company",
                    mcc="5812",
                    status=Merchant.Status.ACTIVE,
                    owner=owner,
                    mid=f"SIBMID{n:07d}",
                )
                for n in range(count)
                if f"SIB{n:07d}" not in have
            ],
            batch_size=1000,
        )
    return list(
        Merchant.objects.filter(registration_number__startswith="SIB")
        .order_by("pk")
        .values_list("pk", "mid")[:count]
    )


def _weighted(rnd: random.Random, table: list[tuple[str, int]]) -> str:
    return rnd.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _items(seed: int, batch_no: int, merchants: list[tuple[int, str]], now: datetime) -> list:
    """One batch of gateway-like items; the same (seed, batch_no) gives the same items."""
    rnd = random.Random(seed * 1_000_003 + batch_no)
    items = []
    for _ in range(BATCH):
        pk, mid = rnd.choice(merchants)
        kind = _weighted(rnd, KINDS)
        currency = _weighted(rnd, CURRENCIES)
        cents = rnd.randint(500, 500_000)
        amount = Decimal(cents).scaleb(-2)
        if kind in ("refund", "chargeback"):
            amount = -amount
        method = rnd.choice(METHODS)
        item = {
            "external_id": "ch_" + "".join(rnd.choices(ALPHABET, k=24)),
            "kind": kind,
            "amount": str(amount),
            "fee": str(
                (abs(amount) * Decimal(rnd.randint(200, 300)) / 10000).quantize(Decimal("0.01"))
            ),
            "cost": str(
                (abs(amount) * Decimal(rnd.randint(100, 150)) / 10000).quantize(Decimal("0.01"))
            ),
            "currency": currency,
            "payment_method": method,
            "card_country": rnd.choice(COUNTRIES),
            "customer_ref": f"cus_{rnd.randint(1, 200_000)}",
            "occurred_at": (now - timedelta(seconds=rnd.randint(0, 90 * 86400)))
            .astimezone(HK)
            .isoformat(timespec="seconds"),
        }
        if rnd.random() < 0.1:
            item["mid"] = mid
        else:
            item["merchant"] = pk
        if method.startswith("card"):
            item["card_fingerprint"] = "".join(rnd.choices(ALPHABET, k=32))
        if rnd.random() < 0.5:
            item["payer_email"] = f"payer{rnd.randint(1, 500_000)}@example.com"
        items.append(item)
    return items


COPY_COLUMNS = [
    "source_id", "external_id", "merchant_id", "kind", "status", "amount", "fee", "cost",
    "currency", "payment_method", "card_country", "customer_ref", "payer_email", "payer_phone",
    "card_fingerprint", "occurred_at", "created_at", "updated_at",
]  # fmt: skip


def _copy_rows(items: list, source_id: int, by_mid: dict[str, int], now: str) -> list[tuple]:
    return [
        (
            source_id,
            item["external_id"],
            item.get("merchant") or by_mid[item["mid"]],
            item["kind"],
            "settled",
            item["amount"],
            item["fee"],
            item["cost"],
            item["currency"],
            item["payment_method"],
            item["card_country"],
            item["customer_ref"],
            item.get("payer_email", ""),
            "",
            item.get("card_fingerprint", ""),
            item["occurred_at"],
            now,
            now,
        )
        for item in items
    ]


HISTORY_COLUMNS = [
    *COPY_COLUMNS, "id", "history_date", "history_change_reason", "history_type",
    "history_user_id", "history_origin",
]  # fmt: skip


def _copy(
    table: str,
    batches: int,
    args,
    merchants,
    source_id: int,
    now: datetime,
    history_table: str = "",
    user_id: int | None = None,
) -> float:
    """Seconds spent loading every batch with COPY, one transaction per batch.

    With ``history_table``, each row also gets its history row, as the
    service writes them (ids are made up: nothing else reads them).
    """
    by_mid = {mid: pk for pk, mid in merchants}
    stamp = now.isoformat()
    elapsed = 0.0
    raw = connection.connection  # psycopg's own connection, under Django's
    for batch_no in range(batches):
        rows = _copy_rows(_items(args.seed, batch_no, merchants, now), source_id, by_mid, stamp)
        history = [
            (*row, batch_no * BATCH + n, stamp, "bench", "+", user_id, "bench")
            for n, row in enumerate(rows)
        ]
        start = time.perf_counter()
        with transaction.atomic(), raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if history_table:
                columns = ", ".join(HISTORY_COLUMNS)
                with cursor.copy(f"COPY {history_table} ({columns}) FROM STDIN") as copy:
                    for row in history:
                        copy.write_row(row)
        elapsed += time.perf_counter() - start
    return elapsed


def _release_connections() -> None:
    """Close every connection and pool, so that a fork shares no socket."""
    connections.close_all()
    for conn in connections.all():
        conn.close_pool()


def _ingest_share(barrier, results, index, args, batches, merchants, source_id, system_id, now):
    """One client of ``_ingest_in_parallel``: every ``processes``-th batch."""
    connections.close_all()  # nothing is open after _release_connections
    source = TransactionSource.objects.get(pk=source_id)
    system = User.objects.get(pk=system_id)
    mine = [
        _items(args.seed, batch_no, merchants, now)
        for batch_no in range(index, batches, args.processes)
    ]
    created, cpu = 0, time.process_time()
    barrier.wait(timeout=600)
    start = time.perf_counter()
    with audit.acting_as(system, origin="bench settlement_ingest"):
        for items in mine:
            created += ingestion.transactions_ingest(
                actor=system, source=source, items=items
            ).created
    results.put((created, start, time.perf_counter(), time.process_time() - cpu))
    _release_connections()


def _ingest_in_parallel(args, batches, merchants, source, system, now) -> tuple[int, float, float]:
    """Created rows, wall seconds from the common start to the last finish, CPU seconds.

    Each process generates its items before the start, so only service calls
    are timed; ``perf_counter`` is system-wide on Linux, comparable across
    processes.
    """
    fork = multiprocessing.get_context("fork")
    _release_connections()
    barrier, results = fork.Barrier(args.processes), fork.Queue()
    processes = [
        fork.Process(
            target=_ingest_share,
            args=(barrier, results, index, args, batches, merchants, source.pk, system.pk, now),
        )
        for index in range(args.processes)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        sys.exit("a client process failed")
    wall = max(o[2] for o in outcomes) - min(o[1] for o in outcomes)
    return sum(o[0] for o in outcomes), wall, sum(o[3] for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="clients sending batches at once, as several API workers would",
    )
    args = parser.parse_args()
    name = settings.DATABASES["default"]["NAME"]
    if connection.vendor != "postgresql" or "bench" not in str(name):
        sys.exit("Refusing to run: DATABASE_URL must name a throwaway PostgreSQL database "
                 "containing 'bench'.")  # fmt: skip
    # Benchmarks run without DEBUG's query log, which re-renders every statement.
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    merchants = _merchants(args.merchants)
    source, _ = TransactionSource.objects.get_or_create(
        code="bench-gateway", defaults={"name": "Bench Gateway"}
    )
    system = core_services.system_user()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE settlements_transaction, settlements_historicaltransaction, "
            "settlements_webhookevent, settlements_reconciliationitem"
        )
        cursor.execute("VACUUM ANALYZE")  # a no-op in a transaction block; autocommit here
    batches = max(1, args.rows // BATCH)
    rows = batches * BATCH
    now = datetime.now(UTC)

    load_before = os.getloadavg()[0]
    ingest_s = 0.0
    ingest_cpu = 0.0
    created = 0
    if args.processes > 1:
        created, ingest_s, ingest_cpu = _ingest_in_parallel(
            args, batches, merchants, source, system, now
        )
    with audit.acting_as(system, origin="bench settlement_ingest"):
        for batch_no in range(batches if args.processes == 1 else 0):
            items = _items(args.seed, batch_no, merchants, now)
            start, cpu = time.perf_counter(), time.process_time()
            report = ingestion.transactions_ingest(actor=system, source=source, items=items)
            ingest_s += time.perf_counter() - start
            ingest_cpu += time.process_time() - cpu
            created += report.created
            if report.rejected:
                sys.exit(f"batch {batch_no}: {report.errors[:3]}")
            if (batch_no + 1) % 100 == 0:
                print(
                    f"  {(batch_no + 1) * BATCH:>9,} rows, {created / ingest_s:,.0f} rows/s so far"
                )
        # The same batches again: every item is already present.
        replay = min(batches, 100)
        replay_s = 0.0
        for batch_no in range(replay):
            items = _items(args.seed, batch_no, merchants, now)
            start = time.perf_counter()
            report = ingestion.transactions_ingest(actor=system, source=source, items=items)
            replay_s += time.perf_counter() - start
            if report.created or report.already_present != BATCH:
                sys.exit(f"replay of batch {batch_no} stored something: {report}")
    load_after = os.getloadavg()[0]
    history = Transaction.history.filter(source_id=source.pk).count()
    stored = Transaction.objects.filter(source=source).count()

    tables = "bench_copy_bare, bench_copy_ledger, bench_copy_history"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {tables}")
        cursor.execute(
            "CREATE TABLE bench_copy_bare "
            "(LIKE settlements_transaction INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        cursor.execute(
            "CREATE TABLE bench_copy_ledger (LIKE settlements_transaction INCLUDING ALL)"
        )
        cursor.execute(
            "CREATE TABLE bench_copy_history (LIKE settlements_historicaltransaction INCLUDING ALL)"
        )
    bare_s = _copy("bench_copy_bare", batches, args, merchants, source.pk, now)
    same_s = _copy(
        "bench_copy_ledger",
        batches,
        args,
        merchants,
        source.pk,
        now,
        history_table="bench_copy_history",
        user_id=system.pk,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_copy_bare")
        bare_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM bench_copy_ledger")
        same_rows = cursor.fetchone()[0]
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(",")[0]
        cursor.execute(f"DROP TABLE {tables}")

    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"database: {pg_version}, {name}; git {sha}; {os.cpu_count()} CPUs; "
          f"Python {platform.python_version()}")  # fmt: skip
    print(
        f"merchants: {len(merchants):,}; batches of {BATCH:,}; rows: {rows:,}; "
        f"client processes: {args.processes}"
    )
    print(
        f"load average (1 min) before/after the service runs: {load_before:.2f}/{load_after:.2f}; "
        f"this process's CPU in the service: {ingest_cpu * 1e6 / rows:.0f} µs/row"
    )
    print(f"stored: {stored:,} transactions, {history:,} history rows")
    print(
        f"transactions_ingest (check + insert + history + commit): "
        f"{rows / ingest_s:,.0f} rows/s ({ingest_s:.1f} s)"
    )
    print(
        f"transactions_ingest, same batches again (all already present): "
        f"{replay * BATCH / replay_s:,.0f} rows/s ({replay} batches)"
    )
    print(
        f"COPY into a bare ledger-shaped table (no indexes, no history): "
        f"{bare_rows / bare_s:,.0f} rows/s ({bare_s:.1f} s)"
    )
    print(
        f"COPY of the same writes (ledger + history tables, their indexes): "
        f"{same_rows / same_s:,.0f} rows/s ({same_s:.1f} s)"
    )


if __name__ == "__main__":
    main()
