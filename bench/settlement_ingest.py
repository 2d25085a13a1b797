"""Transaction ingestion through the service, beside raw COPYs of the same rows.

Run by hand against a throwaway PostgreSQL database whose name contains
"bench" (the script refuses any other). Start from a fresh one each run:

    dropdb --if-exists -h 127.0.0.1 -U postgres paycrm_bench
    createdb -h 127.0.0.1 -U postgres paycrm_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_bench \\
        .venv/bin/python bench/settlement_ingest.py --rows 1000000 [--processes 2]

The script migrates the database, then empties its ledger with TRUNCATE, and
its audit trail too (``TRUNCATE core_auditentry, core_auditseal``): the trail
is insert-only through row triggers, which TRUNCATE does not fire, and only
the tables' owner or a superuser may run it. That is fine in a bench
database and the reason the name must contain "bench"; a fresh database
per run is still the cleanest start.

It generates gateway-like items (random external ids, merchants named by id
or MID, amounts as strings, offsets on every time) for ~2,000 merchants and
sends them through ``transactions_ingest`` in batches of 1,000: checking,
merchant lookup, insert, the batch's audit entry (its rows' ids and keyed
digest, HMAC) and commit, then the seal after commit, as the batch API
would. Only the service calls are timed, not the generation of the items.
Then the same batches are sent again (every item already present), and the
same rows are loaded with psycopg's COPY into empty tables, one transaction
per batch: one shaped like the ledger without indexes (the floor), then the
same writes as the service (a ledger table with all its indexes and checks,
plus one audit entry row per batch into a table shaped like the trail's,
with its indexes), without the service's checking, conflict handling,
foreign keys, digests or seals.

Last, it counts what the run put on the trail (one entry per stored batch,
the seals after them, every entry sealed) and checks the chain with
``core.trailcheck.verify()`` (every entry's MAC and every seal's link; with
``--verify-records`` also core.records' ledger checks: every row's digest
against its entry, every row on an entry). Checkpoints go to a
temporary directory, not the project's.
"""

import argparse
import atexit
import json
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# verify() compares the chain with the newest checkpoint: not one another
# database left in the project's directory.
if "AUDIT_CHECKPOINT_DIR" not in os.environ:
    os.environ["AUDIT_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="bench-checkpoints-")
    atexit.register(shutil.rmtree, os.environ["AUDIT_CHECKPOINT_DIR"], ignore_errors=True)

import django

from bench.common import code_since, code_state

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402

from core import audit, records, trail, trailcheck  # noqa: E402
from core import services as core_services  # noqa: E402
from core.models import AuditEntry, User  # noqa: E402
from merchants.models import Merchant  # noqa: E402
from settlements.models import TransactionSource  # noqa: E402
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


# The columns the service writes an audit entry with (txid is the trigger's,
# seq and the id are left to the table).
AUDIT_COLUMNS = [
    f.column for f in AuditEntry._meta.concrete_fields if f.name not in ("id", "txid", "seq")
]


def _audit_row(batch_no: int, rows: list[tuple], stamp: str, user_id: int | None) -> list:
    """A batch's audit entry as the service writes it, with made-up ids,
    digest and MAC (64 hex digits each: the same bytes, nothing reads them)."""
    merchants = len({row[2] for row in rows})
    first, last = batch_no * BATCH + 1, batch_no * BATCH + len(rows)
    fake = f"{batch_no:064x}"
    values = {
        "created_at": stamp,
        "actor_id": user_id,
        "actor_label": "system",
        "actor_kind": "system",
        "origin": "bench settlement_ingest",
        "ip_address": None,
        "user_agent": "",
        "action": "create",
        "success": True,
        "model": "settlements.transaction",
        "object_id": "",
        "object_label": f"{len(rows)} transactions from bench-gateway",
        "merchant_id": None,
        "changes": json.dumps(
            {
                "rows": [None, len(rows)],
                "source": [None, "bench-gateway"],
                "merchants": [None, merchants],
            }
        ),
        "reason": "ingest bench-gateway",
        "row_model": "settlements.transaction",
        "row_ids": json.dumps([[first, last]]),
        "row_first": first,
        "row_last": last,
        "row_digest": fake,
        "key_id": fake[:12],
        "mac": fake,
        "prev_hash": "",
        "hash": "",
    }
    return [values[column] for column in AUDIT_COLUMNS]


def _copy(
    table: str,
    batches: int,
    args,
    merchants,
    source_id: int,
    now: datetime,
    audit_table: str = "",
    user_id: int | None = None,
) -> float:
    """Seconds spent loading every batch with COPY, one transaction per batch.

    With ``audit_table``, each batch also gets one audit entry row, as the
    service writes it (ids, digest and MAC made up: nothing reads them).
    """
    by_mid = {mid: pk for pk, mid in merchants}
    stamp = now.isoformat()
    elapsed = 0.0
    raw = connection.connection  # psycopg's own connection, under Django's
    for batch_no in range(batches):
        rows = _copy_rows(_items(args.seed, batch_no, merchants, now), source_id, by_mid, stamp)
        entry = _audit_row(batch_no, rows, stamp, user_id)
        start = time.perf_counter()
        with transaction.atomic(), raw.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if audit_table:
                columns = ", ".join(AUDIT_COLUMNS)
                with cursor.copy(f"COPY {audit_table} ({columns}) FROM STDIN") as copy:
                    copy.write_row(entry)
        elapsed += time.perf_counter() - start
    return elapsed


def _trail_figures(source_id: int) -> dict:
    """What the run left on the audit trail (the tables were emptied before it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT txid), "
            "coalesce(sum((changes -> 'rows' ->> 1)::int), 0) FROM core_auditentry "
            "WHERE model = 'settlements.transaction'"
        )
        entries, transactions, rows_named = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum((r ->> 1)::bigint - (r ->> 0)::bigint + 1), 0) "
            "FROM core_auditentry, jsonb_array_elements(row_ids) AS r "
            "WHERE model = 'settlements.transaction'"
        )
        ids_named = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM core_auditentry")
        all_entries = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*), coalesce(sum(entries), 0), coalesce(max(total), 0), "
            "coalesce(max(high), 0) FROM core_auditseal"
        )
        seals, sealed, total, high = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM core_auditentry WHERE txid >= %s", [high])
        unsealed = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM settlements_transaction WHERE source_id = %s", [source_id]
        )
        stored = cursor.fetchone()[0]
    return {
        "entries": entries, "transactions": transactions, "rows_named": rows_named,
        "ids_named": ids_named, "all_entries": all_entries, "seals": seals, "sealed": sealed,
        "total": total, "unsealed": unsealed, "stored": stored,
    }  # fmt: skip


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
    parser.add_argument(
        "--verify-records",
        action="store_true",
        help="also recompute every ledger row's digest against its entry and check that every "
        "row is on one (core.records' ledger checks)",
    )
    args = parser.parse_args()
    code_at_start = code_state()
    name = settings.DATABASES["default"]["NAME"]
    if connection.vendor != "postgresql" or "bench" not in str(name):
        sys.exit("Refusing to run: DATABASE_URL must name a throwaway PostgreSQL database "
                 "containing 'bench' (the script empties its ledger and audit trail).")  # fmt: skip
    # Benchmarks run without DEBUG's query log, which re-renders every statement.
    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    merchants = _merchants(args.merchants)
    source, _ = TransactionSource.objects.get_or_create(
        code="bench-gateway", defaults={"name": "Bench Gateway"}
    )
    system = core_services.system_user()
    with connection.cursor() as cursor:
        # Owner/superuser only, and no row trigger sees it: the trail's
        # insert-only guards stay in place for the run itself.
        cursor.execute(
            "TRUNCATE settlements_transaction, settlements_webhookevent, "
            "settlements_reconciliationitem, core_auditentry, core_auditseal"
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
    figures = _trail_figures(source.pk)
    left_unsealed = figures["unsealed"]
    # A seal covers the transactions older than the oldest one still running
    # anywhere in the cluster (transaction ids are cluster-wide): a writer in
    # another database holds the sealers back. Whatever the sealers after
    # each commit left is sealed now, untimed, and said so below.
    late_sealed, waited = 0, time.perf_counter()
    while figures["unsealed"] and time.perf_counter() - waited < 300:
        late_sealed += trail.seal()
        figures = _trail_figures(source.pk)
        if figures["unsealed"]:
            time.sleep(1)
    waited = time.perf_counter() - waited
    check_start = time.perf_counter()
    check = trailcheck.verify()
    if args.verify_records:
        # The ledger's two record checks: every proven row's digest, and every
        # ledger row on an entry. The third (current rows against their
        # history) would only name the merchants this script bulk-creates
        # without history.
        records._check_proven(check)
        records._check_ledger(check)
    check_s = time.perf_counter() - check_start

    tables = "bench_copy_bare, bench_copy_ledger, bench_copy_audit"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {tables}")
        cursor.execute(
            "CREATE TABLE bench_copy_bare "
            "(LIKE settlements_transaction INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        cursor.execute(
            "CREATE TABLE bench_copy_ledger (LIKE settlements_transaction INCLUDING ALL)"
        )
        cursor.execute("CREATE TABLE bench_copy_audit (LIKE core_auditentry INCLUDING ALL)")
    bare_s = _copy("bench_copy_bare", batches, args, merchants, source.pk, now)
    same_s = _copy(
        "bench_copy_ledger",
        batches,
        args,
        merchants,
        source.pk,
        now,
        audit_table="bench_copy_audit",
        user_id=system.pk,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bench_copy_bare")
        bare_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM bench_copy_ledger")
        same_rows = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM bench_copy_audit")
        same_entries = cursor.fetchone()[0]
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(",")[0]
        cursor.execute(f"DROP TABLE {tables}")

    code = code_since(code_at_start)
    service_rate = rows / ingest_s
    bare_rate = bare_rows / bare_s
    same_rate = same_rows / same_s
    print(f"database: {pg_version}, {name}; {code}; "
          f"{os.cpu_count()} CPUs; Python {platform.python_version()}")  # fmt: skip
    print(
        f"merchants: {len(merchants):,}; batches of {BATCH:,}; rows: {rows:,}; "
        f"client processes: {args.processes}"
    )
    print(
        f"load average (1 min) before/after the service runs: {load_before:.2f}/{load_after:.2f}; "
        f"CPU of the client process(es) in the service: {ingest_cpu * 1e6 / rows:.0f} µs/row"
    )
    print(
        f"stored: {figures['stored']:,} transactions ({created:,} reported created); "
        f"audit entries for settlements.transaction: {figures['entries']:,} "
        f"(batches: {batches:,}; {figures['transactions']:,} distinct txids), naming "
        f"{figures['rows_named']:,} rows by count and {figures['ids_named']:,} by id"
    )
    print(
        f"seals: {figures['seals']:,}, covering {figures['sealed']:,} of "
        f"{figures['all_entries']:,} entries (running total {figures['total']:,}); "
        f"left unsealed by the service: {left_unsealed:,}, sealed after it by the bench: "
        f"{late_sealed:,} (waited {waited:.0f} s), still unsealed: {figures['unsealed']:,}"
    )
    checked = "trailcheck.verify()" + (
        " + records: ledger digests and coverage" if args.verify_records else ""
    )
    print(f"{checked}: {check.summary()} ({check_s:.1f} s)")
    honest = (
        figures["entries"] == batches
        and figures["rows_named"] == figures["ids_named"] == figures["stored"] == rows
        and figures["sealed"] == figures["all_entries"]
        and figures["unsealed"] == 0
        and check.intact
    )
    print("trail: one entry per batch, every row named, every entry sealed: "
          + ("yes" if honest else "NO"))  # fmt: skip
    print(
        f"transactions_ingest (check + insert + audit entry + commit + seal): "
        f"{service_rate:,.0f} rows/s ({ingest_s:.1f} s)"
    )
    print(
        f"transactions_ingest, same batches again (all already present): "
        f"{replay * BATCH / replay_s:,.0f} rows/s ({replay} batches)"
    )
    print(
        f"COPY into a bare ledger-shaped table (no indexes, no audit): "
        f"{bare_rate:,.0f} rows/s ({bare_s:.1f} s)"
    )
    print(
        f"COPY of the same writes (ledger table with its indexes + one audit entry per batch, "
        f"{same_entries:,} entries): {same_rate:,.0f} rows/s ({same_s:.1f} s)"
    )
    print(
        f"service / bare COPY: {service_rate / bare_rate:.1%}; "
        f"service / same-writes COPY: {service_rate / same_rate:.1%}"
    )


if __name__ == "__main__":
    main()
