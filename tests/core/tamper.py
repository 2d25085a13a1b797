"""Changing rows behind the application's back, as an intruder with SQL would."""

from django.db import connection


def tamper(sql: str, params: list) -> None:
    """Run ``sql`` directly; on PostgreSQL as a superuser who switched the
    guard triggers off for the statement."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
