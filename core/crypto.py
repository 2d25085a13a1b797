"""Field encryption at rest: AES-256-GCM with rotatable keys, plus a keyed hash.

``FIELD_ENCRYPTION_KEY`` holds one key or several, newest first:
``"k2:<base64 32 bytes>,k1:<base64 32 bytes>"`` (a bare key gets the id ``k0``).
New values are written with the first key; older ones stay readable with the
others until ``manage.py rotate_field_keys`` re-encrypts them.

A stored value reads ``v1:<key id>:<base64(nonce || ciphertext || tag)>``. The
keyed hash (HMAC-SHA256 under a key derived from the current key) lets equal
values be found without decrypting them; rotation recomputes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "v1"


@lru_cache(maxsize=8)
def _parse_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    keys = []
    for n, item in enumerate(part.strip() for part in raw.split(",") if part.strip()):
        kid, _, encoded = item.rpartition(":")
        kid = kid or f"k{n}"
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY {kid!r} is not base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY {kid!r} must be 32 bytes")
        keys.append((kid, key))
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty")
    return tuple(keys)


def keys() -> tuple[tuple[str, bytes], ...]:
    return _parse_keys(settings.FIELD_ENCRYPTION_KEY)


def current_key_id() -> str:
    return keys()[0][0]


def encrypt(plaintext: str, *, aad: bytes = b"") -> str:
    kid, key = keys()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), aad)
    return f"{PREFIX}:{kid}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, aad: bytes = b"") -> str:
    prefix, kid, payload = token.split(":", 2)
    if prefix != PREFIX:
        raise ValueError("unknown ciphertext format")
    key = dict(keys()).get(kid)
    if key is None:
        raise ImproperlyConfigured(f"no key {kid!r} in FIELD_ENCRYPTION_KEY to decrypt with")
    raw = base64.b64decode(payload)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode()


def key_id_of(token: str) -> str:
    return token.split(":", 2)[1]


def keyed_hash(normalised: str) -> str:
    """HMAC-SHA256 of an already normalised value, hex; finds equal values."""
    hash_key = hashlib.sha256(b"paycrm-blind-index|" + keys()[0][1]).digest()
    return hmac.new(hash_key, normalised.encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """Text encrypted with AES-256-GCM before it reaches the database.

    The attribute holds plaintext in Python; the column holds only ciphertext
    (history tables too, since they copy this field).
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
