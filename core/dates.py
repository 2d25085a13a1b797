"""Calendar days as filters and periods see them: in the project's time zone."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date


def day_start(day: dt.date) -> dt.datetime:
    """The first instant of ``day`` in the project's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def parse_day(value: str) -> dt.date | None:
    """A query parameter as a date; empty or not a date is None (the filter is off)."""
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None
