import base64
import os
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from core import crypto
from merchants import services
from merchants.models import BankAccount, BeneficialOwner
from tests.factories.merchants import MerchantFactory

pytestmark = pytest.mark.django_db


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_round_trip_and_tamper_detection(settings):
    settings.FIELD_ENCRYPTION_KEY = f"a:{_key()}"
    token = crypto.encrypt("HK12345678")
    assert token.startswith("v1:a:")
    assert crypto.decrypt(token) == "HK12345678"
    assert crypto.encrypt("HK12345678") != token  # a fresh nonce every time
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(Exception):  # noqa: B017, PT011  cryptography's InvalidTag
        crypto.decrypt(tampered)


def test_rotation_re_encrypts_rows_and_history_and_keeps_hashes_matching(settings, sales1):
    old, new = _key(), _key()
    settings.FIELD_ENCRYPTION_KEY = f"old:{old}"
    merchant = MerchantFactory(owner=sales1)
    account = services.bank_account_create(
        actor=sales1,
        merchant=merchant,
        account_holder="H",
        bank_name="B",
        country="HK",
        currency="HKD",
        account_number="004-123-456789",
    )
    owner = services.owner_create(
        actor=sales1,
        merchant=merchant,
        full_name="O",
        nationality="HK",
        ownership_percent=Decimal("100"),
        id_number="Z7654321",
    )
    history_rows = BankAccount.history.count()
    # when: the new key goes first, the old one stays for reading
    settings.FIELD_ENCRYPTION_KEY = f"new:{new},old:{old}"
    call_command("rotate_field_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115
    # then: everything is under the new key and still reads the same
    assert crypto.key_id_of(_raw("merchants_bankaccount", "account_number", account.pk)) == "new"
    assert crypto.key_id_of(_raw("merchants_beneficialowner", "id_number", owner.pk)) == "new"
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_number FROM merchants_historicalbankaccount")
        assert {crypto.key_id_of(r[0]) for r in cursor.fetchall()} == {"new"}
    settings.FIELD_ENCRYPTION_KEY = f"new:{new}"  # the old key can go now
    fresh = BankAccount.objects.get(pk=account.pk)
    assert fresh.account_number == "004123456789"
    assert BeneficialOwner.objects.get(pk=owner.pk).id_number == "Z7654321"
    assert fresh.account_hash == crypto.keyed_hash("004123456789")
    assert BankAccount.history.count() == history_rows  # rotation adds no history
