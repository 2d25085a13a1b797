"""Signed checkpoints of the audit trail's head, kept outside the database.

A checkpoint records the newest seal (seq, MAC, running total of entries)
and the time, signed with the trail's Ed25519 key. They are written after
every verification and every few minutes by beat, to the storage named
``audit_checkpoints`` in ``STORAGES``: a directory by default
(``AUDIT_CHECKPOINT_DIR``), in production an object store bucket with
write-once retention (S3 Object Lock in compliance mode, or the same on
another store) that the application can write but not overwrite or delete.
Someone who empties or truncates the trail in the database cannot also roll
back that store, so ``verify_audit_trail`` sees the chain end before the
last checkpoint and names what is missing.
"""

from __future__ import annotations

import base64
import json

from cryptography.exceptions import InvalidSignature
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from core import auditkeys

FORMAT = "paycrm-audit-checkpoint/1"
PREFIX = "checkpoint-"


def storage():
    return storages["audit_checkpoints"]


def location() -> str:
    """Where checkpoints live, for the compliance page."""
    store = storage()
    where = getattr(store, "location", "") or getattr(store, "bucket_name", "")
    return f"{type(store).__name__}: {where}"


def _canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def write(*, seal_seq: int, seal_mac: str, total: int, reason: str) -> str:
    """Sign and store a checkpoint of the head; returns its name."""
    now = timezone.now()
    key = auditkeys.signing_key()
    payload = {
        "format": FORMAT,
        "seal_seq": seal_seq,
        "seal_mac": seal_mac,
        "total": total,
        "created_at": now.isoformat(timespec="microseconds"),
        "reason": reason,
        "key_id": auditkeys.current_id(),
        "public_key": base64.b64encode(auditkeys.public_bytes(key.public_key())).decode(),
    }
    payload["signature"] = base64.b64encode(key.sign(_canonical(payload))).decode()
    name = f"{PREFIX}{seal_seq:012d}-{now:%Y%m%dT%H%M%S%fZ}.json"
    return storage().save(name, ContentFile(json.dumps(payload, indent=1).encode()))


def check(raw: bytes) -> tuple[dict, bool]:
    """(payload, signature valid under one of this trail's keys)."""
    try:
        payload = json.loads(raw)
        signature = base64.b64decode(payload.pop("signature"))
        public = auditkeys.public_key(payload["key_id"])
        if payload.get("format") != FORMAT or public is None:
            return payload, False
        public.verify(signature, _canonical(payload))
        return payload, True
    except (ValueError, KeyError, TypeError, InvalidSignature):
        return {}, False


def names() -> list[str]:
    try:
        _dirs, files = storage().listdir("")
    except FileNotFoundError:
        return []
    return sorted(f for f in files if f.startswith(PREFIX) and f.endswith(".json"))


def latest() -> tuple[str, dict, bool] | None:
    """(name, payload, valid) of the checkpoint of the highest seal, or None."""
    found = names()
    if not found:
        return None
    name = found[-1]
    with storage().open(name, "rb") as handle:
        payload, valid = check(handle.read())
    if valid or not payload:
        return name, payload, valid
    return name, payload, False
