"""The compliance trail's filtered first page over a million entries, beside raw SQL.

Run by hand against a throwaway PostgreSQL database (its name must contain
"bench"; the script migrates it, empties its audit trail and fills it):

    dropdb --if-exists -h 127.0.0.1 -U postgres paycrm_audit_bench
    createdb -h 127.0.0.1 -U postgres paycrm_audit_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/paycrm_audit_bench \\
        .venv/bin/python bench/audit_list.py --entries 1000000

    # again on the same rows, without reloading them (or drop and create first):
    DATABASE_URL=... .venv/bin/python bench/audit_list.py --entries 1000000 --keep

The fill (skipped with ``--keep`` when the table already holds ``--entries``
rows): 50 real user accounts as actors, busier ones and quieter ones (the last
of them left a year ago), the system account and two webhook sources; 2,000
merchants, some far busier than others (merchant ids are numbers only: the
trail has no foreign key to them); a realistic mix of actions — changes to
merchants, contacts, documents, applications, transactions…, sign-ins and
failures, reveals, grants, exports — with a few changed fields each as JSON,
and ``created_at`` rising with the id over two years, as an appended trail
does. Every entry is in the keyed format, as ``core.trail`` writes it: ids
1..N, ``key_id`` the current audit key, its HMAC from ``trail.entry_mac``,
``seq`` empty and ``prev_hash``/``hash`` blank; data changes name the
history row (or for the ledger, the batch of rows) they prove, with a
made-up digest (there are no such rows here: ``--records`` checks would
fail, the chain's do not). ``txid``, which the insert trigger would stamp,
rises with the id, a few entries per transaction, staying below the
cluster's current transaction id so that entries written later sort after
them. The rows go in with psycopg's COPY with the insert trigger disabled
for the load (it would stamp a single txid on them all; the script runs as
superuser) and enabled again after it; then the seals covering them, 1,000
entries each (``--seal-chunk``), computed as ``core.trail.seal`` does and
linked by their MACs, so the bench database holds a valid chain
(``--verify`` checks it with ``core.trailcheck.verify()``). Reloading
TRUNCATEs both tables, which row triggers do not see.

It then times the real code path of the compliance page and API —
``audit_page(audit_entry_list(user=compliance, filters=AuditFilters(...)),
before=None)`` evaluated — for each filter, ``--repeat`` times, and beside it
the floor: the same WHERE ... ORDER BY id DESC LIMIT 51 sent through
``cursor.execute`` and fetched. Both report median and p95 in milliseconds; the
last column names what the planner chose for the raw query (the index, and how
many rows it read and threw away to find the page).
"""

import argparse
import atexit
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# --verify compares the chain with the newest checkpoint: not one another
# database left in the project's directory.
if "AUDIT_CHECKPOINT_DIR" not in os.environ:
    os.environ["AUDIT_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="bench-checkpoints-")
    atexit.register(shutil.rmtree, os.environ["AUDIT_CHECKPOINT_DIR"], ignore_errors=True)

import django

from bench.common import code_since, code_state

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from core import auditkeys, selectors, trail, trailcheck  # noqa: E402
from core import services as core_services  # noqa: E402
from core.dates import day_start  # noqa: E402
from core.models import AuditEntry, AuditSeal, User  # noqa: E402

PAGE = selectors.PAGE_SIZE
# Every column, in the model's order: what the COPY writes and the selector reads.
COLUMNS = tuple(f.column for f in AuditEntry._meta.concrete_fields)
JSON_COLUMNS = {"changes", "row_ids"}
SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM core_auditentry"  # noqa: S608 (constants)

A = AuditEntry.Action
# (action, weight per 1,000 entries)
ACTIONS = [
    (A.UPDATE, 420), (A.CREATE, 250), (A.DELETE, 20), (A.SIGN_IN, 110),
    (A.SIGN_IN_FAILED, 25), (A.SECOND_FACTOR_VERIFIED, 60), (A.SECOND_FACTOR_FAILED, 5),
    (A.SIGN_OUT, 40), (A.LOCKED_OUT, 2), (A.UNLOCKED, 2), (A.PERMISSION_GRANTED, 20),
    (A.PERMISSION_REVOKED, 6), (A.REVEAL, 25), (A.EXPORT, 12), (A.VERIFY, 3),
]  # fmt: skip
AUTH = {
    A.SIGN_IN, A.SIGN_IN_FAILED, A.SECOND_FACTOR_VERIFIED, A.SECOND_FACTOR_FAILED, A.SIGN_OUT,
    A.LOCKED_OUT, A.UNLOCKED,
}  # fmt: skip
FAILURES = {A.SIGN_IN_FAILED, A.SECOND_FACTOR_FAILED, A.LOCKED_OUT}
# (model, weight) of create/update/delete entries
MODELS = [
    ("settlements.transaction", 34), ("merchants.merchant", 18), ("onboarding.application", 9),
    ("merchants.contact", 8), ("merchants.document", 8), ("onboarding.stepdecision", 6),
    ("merchants.activity", 6), ("settlements.statementline", 4), ("merchants.bankaccount", 3),
    ("merchants.beneficialowner", 2), ("core.user", 2),
]  # fmt: skip
WORDS_A = "Golden Harbour Jade Lucky Pearl Summit Victoria Lotus Kowloon Orchid Phoenix Silver "
WORDS_A = (WORDS_A + "Bamboo Dragon Ocean Peak").split()
WORDS_B = "Noodle Tea Electronics Trading Florist Bakery Optical Pharmacy Travel Jewellery "
WORDS_B = (WORDS_B + "Fitness Books Seafood Garden").split()
SURNAMES = ["Chan", "Wong", "Lee", "Cheung", "Lau", "Ho", "Ng", "Leung", "Tang", "Yip"]
GIVEN = ["Tai Man", "Siu Ming", "Ka Yan", "Wing Sze", "Chi Keung", "Mei Ling", "Hoi Yee"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
TASKS = ["task settlements.calculate_run", "task settlements.ingest", "task onboarding.screen"]
REASONS = ["KYC refresh", "Customer request by phone", "Correction after review",
           "Annual review", "Requested by compliance"]  # fmt: skip
SOURCES = ["gateway-hk", "gateway-intl"]


def merchant_name(n: int) -> str:
    return (
        f"{WORDS_A[n % len(WORDS_A)]} {WORDS_B[(n // len(WORDS_A)) % len(WORDS_B)]} {n:04d} Limited"
    )


def _users(actors: int) -> tuple[User, list[User], User]:
    """The compliance reader, the acting accounts and the system account."""
    compliance, _ = User.objects.get_or_create(username="bench_compliance")
    if not compliance.groups.filter(name="compliance").exists():
        # Only when missing: a repeated add still writes a history row (and an entry).
        compliance.groups.add(Group.objects.get(name="compliance"))
    people = []
    for n in range(actors):
        user, _ = User.objects.get_or_create(username=f"bench_actor{n:02d}")
        people.append(user)
    system = core_services.system_user()
    return User.objects.get(pk=compliance.pk), people, system  # fresh permission cache


def _changes(rnd: random.Random, model: str, action: str, merchant: int) -> dict:
    if action == A.DELETE:
        return {"status": ["draft", None], "notes": ["superseded", None]}
    new = action == A.CREATE
    if model == "settlements.transaction":
        amount = f"{rnd.randint(500, 500_000) / 100:.2f}"
        if new:
            return {"amount": [None, amount], "currency": [None, "HKD"],
                    "status": [None, "settled"], "merchant": [None, str(merchant)]}  # fmt: skip
        return {"status": ["settled", rnd.choice(["refunded", "disputed", "reversed"])]}
    if model == "merchants.merchant":
        if new:
            return {"legal_name": [None, merchant_name(merchant)], "status": [None, "onboarding"],
                    "country": [None, "HK"], "mcc": [None, "5812"]}  # fmt: skip
        field = rnd.choice(["status", "risk_level", "expected_monthly_volume", "trading_name"])
        before, after = {
            "status": ("onboarding", "active"),
            "risk_level": ("low", "medium"),
            "expected_monthly_volume": ("250000.00", "400000.00"),
            "trading_name": (None, merchant_name(merchant).removesuffix(" Limited")),
        }[field]
        return {field: [before, after]}
    if model in ("merchants.bankaccount", "merchants.beneficialowner"):
        return {"account_number" if "bank" in model else "id_number": ["••••", "•••• (changed)"]}
    if new:
        return {"name": [None, f"{rnd.choice(SURNAMES)} {rnd.choice(GIVEN)}"],
                "status": [None, "open"]}  # fmt: skip
    return {"status": ["open", rnd.choice(["closed", "approved", "rejected"])]}


def _label(rnd: random.Random, model: str, object_id: int, merchant: int) -> str:
    if model == "merchants.merchant":
        return merchant_name(merchant)
    if model == "onboarding.application":
        return f"Application #{object_id} for {merchant_name(merchant)}"
    if model == "settlements.transaction":
        return f"1:ch_{object_id:012d} {rnd.randint(500, 500_000) / 100:.2f} HKD"
    if model in ("merchants.contact", "merchants.beneficialowner"):
        return f"{rnd.choice(SURNAMES)} {rnd.choice(GIVEN)}"
    if model == "merchants.document":
        return f"{rnd.choice(['Business registration', 'ID card', 'Bank statement'])} v2"
    if model == "merchants.bankaccount":
        return f"HSBC ****{object_id % 10000:04d}"
    if model == "onboarding.stepdecision":
        return f"Approved by bench_actor{object_id % 50:02d} on 3. Compliance review"
    if model == "merchants.activity":
        return rnd.choice(["Call about pricing", "Site visit", "Follow-up on documents"])
    if model == "settlements.statementline":
        return f"{merchant_name(merchant)} {rnd.randint(100, 99_999)}.00"
    return f"{model} #{object_id}"


# The history model whose row a data change's entry proves; the ledger has
# none (its batch entries name the ledger rows themselves).
def _history_label(model: str) -> str:
    app, name = model.split(".")
    return f"{app}.historical{name}"


SPECIAL_ROWS = {
    **dict.fromkeys(AUTH, "core.historicalauthevent"),
    A.REVEAL: "core.historicalsensitiveaccess",
    A.PERMISSION_GRANTED: "merchants.historicalmerchantuserobjectpermission",
    A.PERMISSION_REVOKED: "merchants.historicalmerchantuserobjectpermission",
}


class _Sealer:
    """The seals over the entries as they stream past, ``chunk`` entries or
    a few more each (a transaction's entries stay in one seal), computed as
    ``core.trail.seal`` does: [low, high) of txids, ids and MACs, the keyed link."""

    def __init__(self, chunk: int, key_id: str):
        self.chunk, self.key_id = chunk, key_id
        self.rows: list[AuditSeal] = []
        self.pairs: list[tuple[int, str]] = []
        self.low, self.last_txid, self.total, self.prev_mac = 0, None, 0, ""
        self.last_at = None

    def add(self, pk: int, mac: str, txid: int, at: dt.datetime) -> None:
        if len(self.pairs) >= self.chunk and txid != self.last_txid:
            self.close()
        self.pairs.append((pk, mac))
        self.last_txid, self.last_at = txid, at

    def close(self) -> None:
        if not self.pairs:
            return
        high = self.last_txid + 1
        self.total += len(self.pairs)
        row = {
            "seq": len(self.rows) + 1,
            # A moment after the transaction that wrote the last entry ended.
            "created_at": self.last_at + dt.timedelta(milliseconds=50),
            "key_id": self.key_id,
            "low": self.low,
            "high": high,
            "entries": len(self.pairs),
            "total": self.total,
            "entry_ids": trail.id_ranges(pk for pk, _mac in self.pairs),
            "digest": trail.entries_digest(self.pairs),
            "prev_mac": self.prev_mac,
        }
        row["mac"] = trail.seal_mac(row)
        self.rows.append(AuditSeal(**row))
        self.low, self.prev_mac, self.pairs = high, row["mac"], []


def _rows(args, people: list[User], system: User, top_txid: int, sealer: _Sealer):
    """Every entry as COPY values, id 1..N, keyed (its MAC computed here),
    handed to ``sealer`` in (txid, id) order."""
    rnd = random.Random(args.seed)
    n = args.entries
    key_id = auditkeys.current_id()
    actions = rnd.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS], k=n)
    # Merchants and people: some far busier than others (weight ~ 1/rank^0.6).
    merchants = rnd.choices(
        range(1, args.merchants + 1),
        weights=[1 / (k**0.6) for k in range(1, args.merchants + 1)],
        k=n,
    )
    actor_picks = rnd.choices(
        range(len(people)), weights=[1 / (k**0.6) for k in range(1, len(people) + 1)], k=n
    )
    models = rnd.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS], k=n)
    end = timezone.now().replace(microsecond=0)
    start = end - dt.timedelta(days=730)
    step_us = 730 * 86_400 * 1_000_000 / n
    # txids rise with the id, several entries sharing one, and stay below the
    # cluster's current transaction id (3 is the first normal one).
    per_txid = (top_txid - 3) / n
    ledger_next = 1  # the next ledger row id a batch entry names
    for i in range(1, n + 1):
        action, merchant, model = actions[i - 1], merchants[i - 1], models[i - 1]
        roll = rnd.random()
        person = people[actor_picks[i - 1]]
        if person is people[-1] and i > n // 2:
            person = people[-2]  # the last account left halfway: nothing newer is theirs
        if action in AUTH or roll < 0.80:
            actor_id, actor_label, kind = person.pk, person.username, AuditEntry.ActorKind.USER
            ip = f"10.{person.pk % 200}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            origin, agent = f"web {ip}", BROWSERS[person.pk % len(BROWSERS)]
        elif roll < 0.95 or action not in (A.CREATE, A.UPDATE):
            actor_id, actor_label, kind = system.pk, system.username, AuditEntry.ActorKind.SYSTEM
            ip, origin, agent = None, rnd.choice(TASKS), ""
        else:
            source = SOURCES[merchant % 2]
            actor_id, actor_label, kind = None, source, AuditEntry.ActorKind.API_KEY
            ip, origin, agent = f"203.0.113.{merchant % 250 + 1}", f"webhook {source}", ""
            model, action = "settlements.transaction", A.CREATE
        if model == "settlements.transaction" and action != A.CREATE:
            # The ledger is append-only now: what changes is a statement line.
            model = "settlements.statementline"
        reason = ""
        row_model, row_ids, row_digest = "", [], ""
        if action in AUTH:
            model, object_id, label, merchant_id = "core.user", actor_id, actor_label, None
            changes = {"detail": [None, "wrong password"]} if action in FAILURES else {}
        elif model == "settlements.transaction":
            # One entry per ingestion batch: a webhook's single event, or an
            # API or import batch of up to 1,000 rows, named by id.
            size = 1 if kind == AuditEntry.ActorKind.API_KEY else rnd.randint(1, 1000)
            source = actor_label if kind == AuditEntry.ActorKind.API_KEY else SOURCES[i % 2]
            object_id, merchant_id = "", merchant if size == 1 else None
            label = f"{size} transactions from {source}"
            spread = 1 if size == 1 else rnd.randint(2, min(size, 400))
            changes = {"rows": [None, size], "source": [None, source],
                       "merchants": [None, spread]}  # fmt: skip
            row_model, row_ids = "settlements.transaction", [[ledger_next, ledger_next + size - 1]]
            ledger_next += size
            reason = f"ingest {source}"
        elif action in (A.CREATE, A.UPDATE, A.DELETE):
            object_id = merchant if model == "merchants.merchant" else rnd.randint(1, 5_000_000)
            if model == "core.user":
                target = rnd.choice(people)
                object_id, label, merchant_id = target.pk, target.username, None
                changes = {"is_active": [True, False]}
            else:
                label, merchant_id = _label(rnd, model, object_id, merchant), merchant
                changes = _changes(rnd, model, action, merchant)
            if rnd.random() < 0.1:
                reason = rnd.choice(REASONS)
            row_model, row_ids = _history_label(model), [[i, i]]
        elif action in (A.PERMISSION_GRANTED, A.PERMISSION_REVOKED):
            model, object_id, label, merchant_id = (
                "merchants.merchant", merchant, merchant_name(merchant), merchant,
            )  # fmt: skip
            grantee = f"bench_actor{rnd.randrange(len(people)):02d}"
            if action == A.PERMISSION_GRANTED:
                changes = {"permission": [None, "view_merchant"], "user": [None, grantee]}
            else:
                changes = {"permission": ["view_merchant", None], "user": [grantee, None]}
        elif action == A.REVEAL:
            model = rnd.choice(["merchants.bankaccount", "merchants.beneficialowner"])
            object_id, merchant_id = rnd.randint(1, 20_000), merchant
            label = f"{model} #{object_id}"
            changes = {"field": [None, "account_number" if "bank" in model else "id_number"]}
            reason = rnd.choice(REASONS)
        elif action == A.EXPORT:
            model, object_id, label, merchant_id = "settlements.transaction", "", "", None
            changes = {"format": [None, "csv"], "rows": [None, str(rnd.randint(10, 90_000))]}
        else:  # verify
            model, object_id, label, merchant_id = "core.auditentry", "", "audit trail", None
            changes = {"entries": [None, str(i)]}
        if action in SPECIAL_ROWS:
            row_model, row_ids = SPECIAL_ROWS[action], [[i, i]]
        if row_model:
            # No such rows here: a digest of the right shape, nothing reads it.
            row_digest = f"{rnd.getrandbits(256):064x}"
        at = start + dt.timedelta(microseconds=int((i - 1 + rnd.random() * 0.9) * step_us))
        entry = {
            "id": i,
            "created_at": at,
            "actor_id": actor_id,
            "actor_label": actor_label,
            "actor_kind": str(kind),
            "origin": origin,
            "ip_address": ip,
            "user_agent": agent,
            "action": str(action),
            "success": action not in FAILURES,
            "model": model,
            "object_id": str(object_id),
            "object_label": label,
            "merchant_id": merchant_id,
            "changes": changes,
            "reason": reason,
            "row_model": row_model,
            "row_ids": row_ids,
            "row_first": row_ids[0][0] if row_ids else None,
            "row_last": row_ids[-1][1] if row_ids else None,
            "row_digest": row_digest,
            "key_id": key_id,
            "txid": 3 + int((i - 1) * per_txid),
            "seq": None,
            "prev_hash": "",
            "hash": "",
        }
        entry["mac"] = trail.entry_mac(entry)
        sealer.add(i, entry["mac"], entry["txid"], at)
        yield [
            json.dumps(entry[c], ensure_ascii=False) if c in JSON_COLUMNS else entry[c]
            for c in COLUMNS
        ]


def _load(args, people: list[User], system: User) -> tuple[float, int]:
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE core_auditentry, core_auditseal RESTART IDENTITY")
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        top_txid = cursor.fetchone()[0]
    if top_txid - 3 < args.entries // 1000:
        sys.exit(f"the cluster's transaction id ({top_txid}) is too young for this many entries")
    with connection.cursor() as cursor:
        # The insert trigger stamps the writing transaction's id on every
        # entry: one id for the whole load. Off for the load only, so that the
        # entries keep the txids computed here.
        cursor.execute("ALTER TABLE core_auditentry DISABLE TRIGGER core_auditentry_insert_guard")
    raw = connection.connection  # psycopg's own connection, under Django's
    sealer = _Sealer(args.seal_chunk, auditkeys.current_id())
    rows = _rows(args, people, system, top_txid, sealer)
    chunk, done = 100_000, 0
    try:
        while done < args.entries:
            size = min(chunk, args.entries - done)
            with (
                transaction.atomic(),
                raw.cursor() as cursor,
                cursor.copy(f"COPY core_auditentry ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                for _ in range(size):
                    copy.write_row(next(rows))
            done += size
            print(f"  {done:>9,} entries loaded ({time.perf_counter() - start:.0f} s)")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE core_auditentry ENABLE TRIGGER core_auditentry_insert_guard"
            )
    sealer.close()
    AuditSeal.objects.bulk_create(sealer.rows, batch_size=1000)
    print(f"  {len(sealer.rows):>9,} seals written ({time.perf_counter() - start:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('core_auditentry', 'id'), %s)", [args.entries]
        )
        cursor.execute("VACUUM ANALYZE core_auditentry")  # autocommit here, not in a block
        cursor.execute("VACUUM ANALYZE core_auditseal")
    return time.perf_counter() - start, len(sealer.rows)


def json_list(value):
    return json.loads(value) if isinstance(value, str) else value


def _scalar(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _median_of(sql: str) -> int:
    """The key whose entry count is the median among keys (a typical one)."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        keys = [row[0] for row in cursor.fetchall()]
    return keys[len(keys) // 2]


def _plan(sql: str, params: list) -> str:
    """What the planner did: scanned relations/indexes and rows read past the filter."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans, removed = [], 0

    def walk(node):
        nonlocal removed
        kind = node["Node Type"]
        if kind.endswith("Scan") and kind != "Bitmap Heap Scan":
            name = node.get("Index Name") or node.get("Relation Name")
            how = kind.removesuffix(" Scan").lower().replace("index only", "index-only")
            if node.get("Scan Direction") == "Backward":
                how += " backward"
            if node.get("Parallel Aware"):
                how = "parallel " + how
            scans.append(f"{name} ({how})")
        # Per loop: parallel workers each report their share.
        removed += node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1)
        for child in node.get("Plans", []):
            walk(child)

    top = plan[0]["Plan"]
    walk(top)
    note = " + ".join(dict.fromkeys(scans))
    if top["Node Type"] == "Limit" and "Sort" in top["Plans"][0]["Node Type"]:
        note += ", then sort"
    return f"{note}; {removed:,} filtered out"


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=2_000)
    parser.add_argument("--actors", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep", action="store_true", help="reuse the loaded entries when there are enough"
    )
    parser.add_argument("--seal-chunk", type=int, default=1000, help="entries per seal")
    parser.add_argument(
        "--verify", action="store_true", help="check the chain with core.trailcheck.verify()"
    )
    args = parser.parse_args()
    code_at_start = code_state()
    name = settings.DATABASES["default"]["NAME"]
    if connection.vendor != "postgresql":
        sys.exit(
            "Refusing to run on SQLite: this benchmark measures PostgreSQL's plans over a "
            "million rows. Set DATABASE_URL=postgres://…/paycrm_audit_bench."
        )
    if "bench" not in str(name):
        sys.exit("Refusing to run: DATABASE_URL must name a throwaway database containing "
                 "'bench' (the script empties core_auditentry).")  # fmt: skip
    settings.DEBUG = False  # no query log
    call_command("migrate", verbosity=0)
    compliance, people, system = _users(args.actors)
    have = AuditEntry.objects.count()
    load_s = None
    if not (args.keep and have >= args.entries):
        load_s, _seals = _load(args, people, system)
    entries = AuditEntry.objects.count()
    seals = AuditSeal.objects.count()
    keyed = AuditEntry.objects.filter(seq__isnull=True).exclude(mac="").count()
    check = None
    if args.verify:
        check_start = time.perf_counter()
        check = trailcheck.verify()
        check_s = time.perf_counter() - check_start

    # Typical values, taken from the data: the median merchant and actor by entries.
    merchant = _median_of(
        "SELECT merchant_id FROM core_auditentry WHERE merchant_id IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*), 1"
    )
    actor_id = _median_of(
        "SELECT actor_id FROM core_auditentry WHERE actor_kind = 'user' "
        "GROUP BY 1 ORDER BY count(*), 1"
    )
    actor = User.objects.get(pk=actor_id).username
    # Ledger rows, halfway up the ledger and an old one: which batch entry names it.
    ledger_rows = max(
        10,
        _scalar(
            "SELECT coalesce(max(row_last), 0) FROM core_auditentry "
            "WHERE row_model = 'settlements.transaction' AND row_last IS NOT NULL"
        ),
    )
    first, last = (
        _scalar("SELECT min(created_at) FROM core_auditentry"),
        _scalar("SELECT max(created_at) FROM core_auditentry"),
    )
    # A week in the middle of the trail, as an auditor's question about last year would be.
    week_from = timezone.localdate(first + (last - first) / 2)
    week_to = week_from + dt.timedelta(days=6)
    q = merchant_name(merchant).removesuffix(" Limited")
    typo = q.replace("s", "", 1) if "s" in q else q + "x"

    week = [day_start(week_from), day_start(week_to + dt.timedelta(days=1))]
    like = f"%{q}%"
    text = (
        "(UPPER(object_label::text) LIKE UPPER(%s) OR UPPER(reason::text) LIKE UPPER(%s) "
        "OR UPPER(origin::text) LIKE UPPER(%s))"
    )
    # The selector bounds the id of a date range through the time index (see
    # core.selectors); the floor sends the same SQL.
    margin = dt.timedelta(hours=1)
    dated = (
        "created_at >= %s AND id >= (SELECT id FROM core_auditentry WHERE created_at >= %s "
        "ORDER BY created_at, id LIMIT 1) AND created_at < %s AND id <= (SELECT id FROM "
        "core_auditentry WHERE created_at < %s ORDER BY created_at DESC, id DESC LIMIT 1)"
    )
    dated_params = [week[0], week[0] - margin, week[1], week[1] + margin]
    F = selectors.AuditFilters
    # (label, filters, before-page?, raw WHERE, raw params)
    cases = [
        ("no filter", F(), False, "TRUE", []),
        (f"merchant ({merchant})", F(merchant=merchant), False, "merchant_id = %s", [merchant]),
        ("merchant, second page", F(merchant=merchant), True, "merchant_id = %s", [merchant]),
        (
            "merchant + action update",
            F(merchant=merchant, action="update"),
            False,
            "action = %s AND merchant_id = %s",
            ["update", merchant],
        ),
        (
            f"actor ({actor})",
            F(actor=actor),
            False,
            "actor_id IN (%s)",
            [actor_id],
        ),
        (
            "model merchant + object_id",
            F(model="merchants.merchant", object_id=str(merchant)),
            False,
            "model = %s AND object_id = %s",
            ["merchants.merchant", str(merchant)],
        ),
        *(
            (
                f"ledger row {where_in_ledger} (transaction #{row})",
                F(model="settlements.transaction", object_id=str(row)),
                False,
                "((model = %s AND object_id = %s) OR {covering})",
                ["settlements.transaction", str(row)],
                (
                    "SELECT id, row_ids FROM core_auditentry WHERE row_first IS NOT NULL "
                    "AND row_model = %s AND int8range(row_first, row_last, '[]') @> %s::bigint "
                    "LIMIT 200",
                    ["settlements.transaction", row],
                    row,
                ),
            )
            for where_in_ledger, row in (("halfway", ledger_rows // 2), ("old", ledger_rows // 10))
        ),
        (
            f"one week ({week_from:%Y-%m-%d})",
            F(date_from=week_from, date_to=week_to),
            False,
            dated,
            dated_params,
        ),
        (
            "action sign_in_failed + week",
            F(action="sign_in_failed", date_from=week_from, date_to=week_to),
            False,
            "action = %s AND " + dated,
            ["sign_in_failed", *dated_params],
        ),
        (f'q "{q}"', F(q=q), False, text, [like] * 3),
        # Two harder cases an auditor meets too: someone who left a year ago, a typo.
        (
            f"actor who left ({people[-1].username})",
            F(actor=people[-1].username),
            False,
            "actor_id IN (%s)",
            [people[-1].pk],
        ),
        (f'q "{typo}" (no match)', F(q=typo), False, text, [f"%{typo}%"] * 3),
    ]

    results = []
    for label, filters, second, where, params, *pre in cases:
        qs = selectors.audit_entry_list(user=compliance, filters=filters)
        before = selectors.audit_page(qs, before=None).next_before if second else None
        if second and before is None:
            sys.exit(f"{label}: the filter has a single page; load more --entries")

        def final_sql(cursor, where=where, params=params, second=second, before=before, pre=pre):
            """The page's SQL; a record lookup first finds the ledger batch
            entries that name the row, as the selector does (core.selectors)."""
            if pre:
                pre_sql, pre_params, wanted = pre[0]
                cursor.execute(pre_sql, pre_params)
                ids = [
                    pk
                    for pk, ranges in cursor.fetchall()
                    if any(first <= wanted <= last for first, last in json_list(ranges))
                ]
                covering = f"id IN ({', '.join(map(str, ids))})" if ids else "FALSE"
                where = where.replace("{covering}", covering)
            sql = SELECT + f" WHERE {where}" + (" AND id < %s" if second else "")
            sql += f" ORDER BY id DESC LIMIT {PAGE + 1}"
            return sql, [*params, before] if second else params

        def through_selector(filters=filters, before=before):
            qs = selectors.audit_entry_list(user=compliance, filters=filters)
            return selectors.audit_page(qs, before=before)

        def raw_floor(final_sql=final_sql):
            with connection.cursor() as cursor:
                cursor.execute(*final_sql(cursor))
                return cursor.fetchall()

        page, rows = through_selector(), raw_floor()
        if [e.pk for e in page.entries] != [r[0] for r in rows][:PAGE]:
            sys.exit(f"{label}: the raw query does not return the selector's page")
        selector_ms, floor_ms = [], []
        for _ in range(args.repeat):  # interleaved, so both meet the same cache
            start = time.perf_counter()
            through_selector()
            selector_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            raw_floor()
            floor_ms.append((time.perf_counter() - start) * 1000)
        with connection.cursor() as cursor:
            sql, values = final_sql(cursor)
        plan = _plan(sql, values)
        if pre:
            plan = f"lookup: {_plan(pre[0][0], pre[0][1])}; page: {plan}"
        results.append((label, len(page.entries), selector_ms, floor_ms, plan))
        print(f"  {label}: {statistics.median(selector_ms):.1f} ms")

    code = code_since(code_at_start)
    version = _scalar("SELECT version()").split(",")[0]
    print(f"database: {version}, {name}; {code}; {os.cpu_count()} CPUs; "
          f"Python {platform.python_version()}")  # fmt: skip
    loaded = f"loaded and sealed in {load_s:.0f} s" if load_s else "kept from an earlier run"
    print(
        f"entries: {entries:,} ({keyed:,} keyed, {loaded}); seals: {seals:,}; "
        f"{args.merchants:,} merchants, {args.actors} people "
        f"+ system + {len(SOURCES)} webhooks; {first:%Y-%m-%d} to {last:%Y-%m-%d}"
    )
    if check is not None:
        print(f"trailcheck.verify(): {check.summary()} ({check_s:.0f} s)")
    count = "SELECT count(*), max(created_at) FROM core_auditentry WHERE "
    with connection.cursor() as cursor:
        cursor.execute(count + "merchant_id = %s", [merchant])
        of_merchant = cursor.fetchone()[0]
        cursor.execute(count + "actor_id = %s", [actor_id])
        of_actor = cursor.fetchone()[0]
        cursor.execute(count + "actor_id = %s", [people[-1].pk])
        of_leaver, leaver_last = cursor.fetchone()
    print(
        f"typical merchant {merchant}: {of_merchant:,} entries; typical actor {actor}: "
        f"{of_actor:,}; {people[-1].username}: {of_leaver:,}, the last on {leaver_last:%Y-%m-%d}"
    )
    print(
        f"page of {PAGE}, {args.repeat} runs each; milliseconds; bar: filtered first page < 200 ms"
    )
    head = (
        f"{'filter':<44} {'rows':>4}  {'selector med':>12} {'p95':>7}  "
        f"{'raw SQL med':>11} {'p95':>7}  plan of the raw query"
    )
    print(head)
    print("-" * len(head))
    for label, count, selector_ms, floor_ms, plan in results:
        print(
            f"{label:<44} {count:>4}  {statistics.median(selector_ms):>12.2f} "
            f"{_pct(selector_ms, 95):>7.2f}  {statistics.median(floor_ms):>11.2f} "
            f"{_pct(floor_ms, 95):>7.2f}  {plan}"
        )
    load = os.getloadavg()
    print(f"load average at the end (1/5/15 min): {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}")
    slow = [r[0] for r in results if statistics.median(r[2]) >= 200]
    print("over 200 ms (median): " + (", ".join(slow) if slow else "none"))


if __name__ == "__main__":
    main()
