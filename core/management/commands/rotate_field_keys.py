"""Re-encrypt every encrypted field (and its history copies) with the current key.

Put the new key first in FIELD_ENCRYPTION_KEY, keep the old ones after it, run
this command, then drop the old keys. Keyed hashes (``account_hash``) are
recomputed under the new key as well.
"""

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from core import crypto

HASHED = {"account_number": "account_hash"}  # encrypted field → its keyed-hash column


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields with the first key in FIELD_ENCRYPTION_KEY."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options) -> None:
        current = crypto.current_key_id()
        total = 0
        for model in apps.get_models():
            fields = [
                f for f in model._meta.concrete_fields if isinstance(f, crypto.EncryptedTextField)
            ]
            if fields:
                count = self._rotate(model, fields, current, batch_size)
                if count:
                    self.stdout.write(f"{model._meta.label}: {count} value(s) re-encrypted")
                total += count
        self.stdout.write(self.style.SUCCESS(f"{total} value(s) now under key {current!r}."))

    def _rotate(self, model, fields, current: str, batch_size: int) -> int:
        """Reads raw ciphertext, so rows already under ``current`` are left alone.

        Writes use ``update()``: rotation changes no business value, so it adds no
        history rows (the history copies are rotated in their own pass).
        """
        qn = connection.ops.quote_name
        pk = model._meta.pk
        columns = ", ".join(qn(f.column) for f in fields)
        hash_fields = {f.name: HASHED[f.name] for f in fields if f.name in HASHED}
        rotated, last = 0, None
        while True:
            where = f"WHERE {qn(pk.column)} > %s " if last is not None else ""
            sql = (
                f"SELECT {qn(pk.column)}, {columns} FROM {qn(model._meta.db_table)} "  # noqa: S608
                f"{where}ORDER BY {qn(pk.column)} LIMIT %s"
            )
            params = [last, batch_size] if last is not None else [batch_size]
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                for row_pk, *values in rows:
                    updates = {}
                    for field, token in zip(fields, values, strict=True):
                        if token and crypto.key_id_of(token) != current:
                            clear = crypto.decrypt(token)
                            updates[field.name] = clear  # the field encrypts on save
                            if field.name in hash_fields:
                                updates[hash_fields[field.name]] = crypto.keyed_hash(clear)
                    if updates:
                        model._default_manager.filter(pk=row_pk).update(**updates)
                        rotated += sum(1 for f in fields if f.name in updates)
            if len(rows) < batch_size:
                return rotated
            last = rows[-1][0]
