"""Checking the audit trail: every entry's MAC, every seal's link, the
checkpoints kept outside the database, and (``records=True``) the records
the entries prove.

What it catches, for someone with database access but not the key: a forged
or edited entry (its MAC), an entry deleted, moved or added after sealing
(its seal's id list and digest), a seal forged, edited or removed (the keyed
link), a tail cut off or the table emptied (the last checkpoint, which lives
outside the database), a forged archive entry (its MAC). What it cannot see:
entries written after the last checkpoint and removed together with their
seals before the next one; the checkpoint interval bounds that window.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from core import auditkeys, checkpoints, trail
from core.models import AuditEntry, AuditSeal

Action = AuditEntry.Action
GENESIS = "0" * 64
MAX_PROBLEMS = 200


@dataclass
class Verification:
    intact: bool = True
    entries: int = 0  # keyed entries checked, sealed or not
    seals: int = 0
    pending: int = 0  # written, not sealed yet
    legacy: int = 0  # entries of the earlier unkeyed chain
    head_seal: int | None = None
    head_mac: str = ""
    total: int = 0  # entries sealed since the trail began, archived ones included
    checkpoint: str = ""
    records: int = 0  # records compared with what the trail proves
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.intact = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def problem(self) -> str:
        return self.problems[0] if self.problems else ""

    def as_dict(self) -> dict:
        out = asdict(self)
        out["problem_count"] = len(out.pop("problems"))
        out["problem"] = self.problem
        return out

    def summary(self) -> str:
        if self.intact:
            text = f"intact: {self.entries + self.legacy} entries, {self.seals} seals"
            if self.records:
                text += f", {self.records} records"
            return text
        return f"BROKEN: {len(self.problems)} problem(s); first: {self.problem}"


def _authentic(entry: AuditEntry) -> bool:
    return not trail.is_legacy(entry) and auditkeys.mac_matches(
        "entry", entry.key_id, b"entry/2\n" + trail.canonical(trail.content(entry)), entry.mac
    )


def _latest_authentic(action: str, result: Verification | None = None) -> AuditEntry | None:
    found = None
    for entry in AuditEntry.objects.filter(action=action).order_by("id"):
        if _authentic(entry):
            found = entry
        elif result is not None:
            result.fail(f"entry {entry.pk} ({action}) is not authentic: forged or altered")
    return found


def archive_anchor(result: Verification | None = None) -> dict | None:
    """What the last authentic archive entry recorded, or None."""
    entry = _latest_authentic(Action.ARCHIVE, result)
    return trail.recorded_values(entry) if entry is not None else None


# ---------------------------------------------------------------------------
# The earlier, unkeyed chain
# ---------------------------------------------------------------------------


def _legacy_in_order(after: int, chunk: int = 5000) -> Iterator[AuditEntry]:
    last = after
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq")[:chunk])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def legacy_walk(*, after_seq: int = 0, after_hash: str = GENESIS) -> tuple[int, int, str, str]:
    """(entries, last seq, last hash, first problem) of the unkeyed chain."""
    count, seq, prev = 0, after_seq, after_hash
    for entry in _legacy_in_order(after_seq):
        if entry.seq != seq + 1:
            return count, seq, prev, f"legacy entry seq {seq + 1} is missing (found {entry.seq})"
        if entry.prev_hash != prev:
            return count, seq, prev, f"legacy entry {entry.pk}: link to the previous one broken"
        if trail.legacy_hash(prev, entry) != entry.hash:
            return count, seq, prev, f"legacy entry {entry.pk} (seq {entry.seq}): content altered"
        count, seq, prev = count + 1, entry.seq, entry.hash
    return count, seq, prev, ""


def _check_legacy(result: Verification, anchor: dict | None) -> None:
    reanchor = _latest_authentic(Action.REANCHOR, result)
    has_legacy = AuditEntry.objects.filter(seq__isnull=False).exists()
    if reanchor is None:
        if has_legacy:
            result.fail("entries of the earlier chain exist but no authentic anchor records them")
        return
    recorded = trail.recorded_values(reanchor)
    after_seq, after_hash = 0, GENESIS
    if anchor and anchor.get("legacy_through_seq"):
        after_seq, after_hash = anchor["legacy_through_seq"], anchor["legacy_through_hash"]
    count, seq, last_hash, problem = legacy_walk(after_seq=after_seq, after_hash=after_hash)
    result.legacy = count
    if problem:
        result.fail(problem)
        return
    if seq != recorded.get("head_seq", 0) or (seq and last_hash != recorded.get("head_hash")):
        result.fail(
            f"the earlier chain ends at seq {seq}, but anchor entry {reanchor.pk} recorded "
            f"seq {recorded.get('head_seq')} ({recorded.get('head_hash')}): entries missing"
        )


# ---------------------------------------------------------------------------
# Seals and entries
# ---------------------------------------------------------------------------


def _seals_after(seq: int, chunk: int) -> Iterator[list[AuditSeal]]:
    while True:
        rows = list(AuditSeal.objects.filter(seq__gt=seq).order_by("seq")[:chunk])
        if not rows:
            return
        yield rows
        seq = rows[-1].seq


def _order_key(entry: AuditEntry) -> int | None:
    return entry.txid if entry.txid is not None else entry.pk


def _check_entry(result: Verification, entry: AuditEntry) -> None:
    result.entries += 1
    if not auditkeys.is_known(entry.key_id):
        result.fail(f"entry {entry.pk}: signed with unknown key {entry.key_id!r}")
    elif not _authentic(entry):
        result.fail(f"entry {entry.pk}: MAC does not match: forged or altered")


def _check_seal(result: Verification, row: AuditSeal, entries: list[AuditEntry], prev) -> None:
    seq, high, mac, total = prev
    if row.seq != seq + 1:
        result.fail(f"seals {seq + 1} to {row.seq - 1} are missing")
    if row.prev_mac != mac or row.low != high:
        result.fail(f"seal {row.seq}: link to the previous seal broken")
    if not auditkeys.mac_matches(
        "entry", row.key_id, b"seal/2\n" + trail.canonical(trail.seal_content(row)), row.mac
    ):
        result.fail(f"seal {row.seq}: MAC does not match: forged or altered")
    if row.total != total + row.entries:
        result.fail(f"seal {row.seq}: running total {row.total}, expected {total + row.entries}")
    expected = set(trail.ids_of(row.entry_ids))
    found = {e.pk for e in entries}
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing:
        result.fail(
            f"seal {row.seq}: {len(missing)} entries missing (deleted): "
            + ", ".join(f"#{pk}" for pk in missing[:10])
        )
    if extra:
        result.fail(
            f"seal {row.seq}: entries not sealed in it (inserted later): "
            + ", ".join(f"#{pk}" for pk in extra[:10])
        )
    if len(expected) != row.entries or (
        not missing
        and not extra
        and trail.entries_digest((e.pk, e.mac) for e in entries) != row.digest
    ):
        result.fail(f"seal {row.seq}: digest of its entries does not match")
    for entry in entries:
        _check_entry(result, entry)


def _check_chain(result: Verification, anchor: dict | None, *, chunk: int = 500) -> None:
    if anchor:
        prev = (anchor["through_seal"], anchor["through_high"], anchor["through_mac"])
        prev = (*prev, anchor["total"])
    else:
        prev = (0, 0, "", 0)
    first_low = prev[1]
    sealed = 0
    for rows in _seals_after(prev[0], chunk):
        span = trail.covered(rows[0].low, rows[-1].high)
        by_seal: dict[int, list[AuditEntry]] = {row.seq: [] for row in rows}
        lows = [row.low for row in rows]
        for entry in span.iterator(chunk_size=2000):
            key = _order_key(entry)
            at = bisect.bisect_right(lows, key) - 1
            if at >= 0 and key < rows[at].high:
                by_seal[rows[at].seq].append(entry)
        for row in rows:
            _check_seal(result, row, by_seal[row.seq], prev)
            sealed += len(by_seal[row.seq])
            result.seals += 1
            prev = (row.seq, row.high, row.mac, row.total)
    result.head_seal, result.head_mac, result.total = prev[0] or None, prev[2], prev[3]
    for entry in trail.covered(prev[1], 2**62).iterator(chunk_size=2000):
        result.pending += 1
        _check_entry(result, entry)
    keyed = AuditEntry.objects.filter(seq__isnull=True)
    key = "txid" if trail.connection.vendor == "postgresql" else "id"
    if first_low:  # entries below an archive's boundary are the archive's
        keyed = keyed.exclude(**{f"{key}__lt": first_low})
    if keyed.count() != sealed + result.pending:
        # Entries the database stamped no order key on (triggers off) or put
        # below the first seal: no seal can cover them.
        stray = keyed.exclude(**{f"{key}__gte": first_low})
        ids = list(stray.order_by("id").values_list("id", flat=True)[:10])
        result.fail(
            f"{keyed.count() - sealed - result.pending} entries are outside every seal "
            f"(inserted around the chain): " + ", ".join(f"#{pk}" for pk in ids)
        )


def _check_checkpoint(result: Verification, anchor: dict | None) -> None:
    latest = checkpoints.latest()
    if latest is None:
        return
    name, point, valid = latest
    result.checkpoint = name
    if not valid:
        result.fail(f"checkpoint {name}: signature invalid: the checkpoint was altered")
        return
    head = result.head_seal or 0
    seq = point["seal_seq"]
    if head < seq:
        result.fail(
            f"the chain ends at seal {head} ({result.total} entries) but checkpoint {name} "
            f"of {point['created_at']} recorded seal {seq} with {point['total']} entries: "
            f"{point['total'] - result.total} entries and seals {head + 1} to {seq} are missing "
            "(truncated, deleted or emptied)"
        )
        return
    if anchor and seq <= anchor["through_seal"]:
        return  # archived since; the archive file holds that seal
    row = AuditSeal.objects.filter(seq=seq).first()
    if row is None or row.mac != point["seal_mac"] or row.total != point["total"]:
        result.fail(f"seal {seq} differs from checkpoint {name}: the chain was rewritten")


def verify(*, records: bool = False) -> Verification:
    """Check the whole trail (and with ``records`` the rows it proves)."""
    result = Verification()
    anchor = archive_anchor(result)
    _check_legacy(result, anchor)
    _check_chain(result, anchor)
    _check_checkpoint(result, anchor)
    if records:
        from core import records as record_check

        record_check.check(result)
    return result


def verify_since_checkpoint() -> Verification:
    """The quick check before a scheduled checkpoint: the seals after the
    last checkpoint link to it and their entries are authentic."""
    result = Verification()
    latest = checkpoints.latest()
    if latest is None or not latest[2]:
        return verify()
    name, point, _valid = latest
    start = AuditSeal.objects.filter(seq=point["seal_seq"]).first()
    if start is None or start.mac != point["seal_mac"]:
        return verify()
    result.checkpoint = name
    _check_chain(
        result, {"through_seal": start.seq, "through_high": start.high,
                 "through_mac": start.mac, "total": start.total},
    )  # fmt: skip
    # The quick check counts only what it walked; entries below are the full check's.
    result.problems = [p for p in result.problems if "outside every seal" not in p]
    result.intact = not result.problems
    return result


def record_verification(result: Verification, *, actor=None) -> AuditEntry:
    """Put the outcome on the trail itself; the compliance page shows the latest."""
    from core import audit

    values = result.as_dict()
    values["problems"] = " | ".join(result.problems[:5])
    with audit.as_actor(actor) if actor is not None else contextlib.nullcontext():
        return trail.record_system(Action.VERIFY, values, success=result.intact)
