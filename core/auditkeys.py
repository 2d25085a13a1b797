"""The audit trail's keys, all derived from ``AUDIT_SIGNING_KEY``.

One 32-byte seed (base64 in the environment, never in the database) gives:

- an HMAC-SHA256 key that authenticates every entry and every seal (purpose
  ``entry``) and one that digests the records an entry proves (``record``);
- the Ed25519 key that signs checkpoints and evidence bundles.

Each seed has a key id (the first 12 hex digits of a hash of it) written on
every entry, seal and checkpoint. Rotation: put the new seed in
``AUDIT_SIGNING_KEY`` and the old one in ``AUDIT_PREVIOUS_SIGNING_KEYS``
(comma-separated); new entries use the new key, old ones still verify.
Without a configured seed, one is derived from ``SECRET_KEY``: fine for a
demo, not for evidence (the deploy check warns).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def decode_seed(configured: str) -> bytes:
    seed = base64.b64decode(configured, validate=True)
    if len(seed) != 32:
        raise ValueError(f"{len(seed)} bytes instead of 32")
    return seed


def _current_seed() -> bytes:
    return _seeds()[0]


def _seeds() -> tuple[bytes, ...]:
    return _decoded(
        settings.AUDIT_SIGNING_KEY,
        getattr(settings, "AUDIT_PREVIOUS_SIGNING_KEYS", ""),
        settings.SECRET_KEY,
    )


@functools.lru_cache(maxsize=8)
def _decoded(current: str, previous: str, secret_key: str) -> tuple[bytes, ...]:
    """The seeds, current first, decoded once per configuration (every entry
    and every digest asks for them)."""
    if current:
        first = decode_seed(current)
    else:
        first = hashlib.sha256(b"paycrm-audit-signing|" + secret_key.encode()).digest()
    return (first, *(decode_seed(part.strip()) for part in previous.split(",") if part.strip()))


@functools.lru_cache(maxsize=16)
def _key_id(seed: bytes) -> str:
    return hashlib.sha256(b"paycrm-audit-key-id|" + seed).hexdigest()[:12]


@functools.lru_cache(maxsize=64)
def _derive(seed: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"paycrm audit " + purpose.encode()
    ).derive(seed)


def current_id() -> str:
    return _key_id(_current_seed())


def known_ids() -> list[str]:
    return [_key_id(seed) for seed in _seeds()]


def is_known(key_id: str) -> bool:
    return _seed_for(key_id) is not None


def _seed_for(key_id: str) -> bytes | None:
    for seed in _seeds():
        if _key_id(seed) == key_id:
            return seed
    return None


def mac(purpose: str, key_id: str, data: bytes) -> str | None:
    """HMAC-SHA256 of ``data`` under the key ``key_id`` (hex); None for an unknown key."""
    seed = _seed_for(key_id)
    if seed is None:
        return None
    return hmac.new(_derive(seed, purpose), data, hashlib.sha256).hexdigest()


def mac_matches(purpose: str, key_id: str, data: bytes, stored: str) -> bool:
    expected = mac(purpose, key_id, data)
    return expected is not None and hmac.compare_digest(expected, stored or "")


def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_current_seed())


def public_key(key_id: str) -> Ed25519PublicKey | None:
    seed = _seed_for(key_id)
    return Ed25519PrivateKey.from_private_bytes(seed).public_key() if seed else None


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
