import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_database_runs_with_the_documented_settings():
    options = connection.settings_dict["OPTIONS"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            busy = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
            foreign_keys = cursor.execute("PRAGMA foreign_keys").fetchone()[0]
        assert busy >= 5000
        assert foreign_keys == 1
        assert options["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in options["init_command"]
    else:
        assert connection.vendor == "postgresql"
        assert options["pool"]["max_size"] >= 1
        assert connection.settings_dict["CONN_MAX_AGE"] == 0
