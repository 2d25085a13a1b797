"""FX rates: entered one by one or imported as CSV, and looked up by the calculation."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from core import audit
from core.exceptions import DomainError
from core.models import User
from settlements.models import FxRate

CSV_COLUMNS = ("date", "base", "quote", "rate")
MAX_ROWS = 20_000


def _require(actor: User, action: str) -> None:
    if not actor.has_perm(f"settlements.{action}_fxrate"):
        raise PermissionDenied


@transaction.atomic
def fx_rate_set(*, actor: User, rate_on: date, base: str, quote: str, rate: Decimal) -> FxRate:
    """Enter the rate of ``base`` in ``quote`` on a day; an existing one is replaced."""
    _require(actor, "add")
    base, quote = base.upper(), quote.upper()
    existing = FxRate.objects.select_for_update().filter(rate_on=rate_on, base=base, quote=quote)
    fx = existing.first() or FxRate(rate_on=rate_on, base=base, quote=quote)
    if fx.pk and not actor.has_perm("settlements.change_fxrate"):
        raise PermissionDenied
    fx.rate = rate
    if base == quote:
        raise ValidationError({"quote": _("Choose a currency other than the base currency.")})
    fx.full_clean()
    audit.stamp(fx, actor=actor, reason="rate replaced" if fx.pk else "rate entered")
    fx.save()
    return fx


@dataclass
class FxImportReport:
    rows: int = 0
    written: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, message


@transaction.atomic
def fx_rates_import(*, actor: User, text: str) -> FxImportReport:
    """Rates from CSV (``date,base,quote,rate``): all rows or none.

    A file with any bad row writes nothing and reports every problem by line.
    """
    _require(actor, "add")
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in headers]
    if missing:
        raise DomainError(
            _("The file lacks the column(s): %(cols)s. Expected: %(all)s.")
            % {"cols": ", ".join(missing), "all": ", ".join(CSV_COLUMNS)},
            field="file",
        )
    report = FxImportReport()
    parsed: dict[tuple[date, str, str], Decimal] = {}
    for record in reader:
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise DomainError(_("At most %(n)d rows per file.") % {"n": MAX_ROWS}, field="file")
        line = reader.line_num
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in record.items()}
        day = _iso_date(row["date"])
        if day is None:
            report.errors.append((line, "date", _("Enter the date as YYYY-MM-DD.")))
        try:
            rate = Decimal(row["rate"])
            if not rate.is_finite() or rate <= 0:
                raise InvalidOperation
        except InvalidOperation:
            report.errors.append((line, "rate", _("Enter a positive number.")))
            rate = None
        candidate = FxRate(
            rate_on=day or date(2000, 1, 1),  # placeholder: only the codes are checked
            base=row["base"].upper(),
            quote=row["quote"].upper(),
            rate=rate or Decimal(1),
        )
        try:
            candidate.clean_fields(exclude=["rate_on", "rate"])
            if candidate.base == candidate.quote:
                raise ValidationError({"quote": _("Must differ from the base currency.")})
        except ValidationError as exc:
            for column, messages in exc.message_dict.items():
                report.errors.extend((line, column, m) for m in messages)
        if day and rate:
            parsed[(day, candidate.base, candidate.quote)] = rate
    if report.rows == 0:
        raise DomainError(_("The file has a header but no rows."), field="file")
    if report.errors:
        return report
    for (day, base, quote), rate in parsed.items():
        fx_rate_set(actor=actor, rate_on=day, base=base, quote=quote, rate=rate)
        report.written += 1
    return report


def _iso_date(value: str) -> date | None:
    """The date, or None for text that is not a real YYYY-MM-DD date."""
    try:
        return parse_date(value)
    except ValueError:
        return None


class MissingRates(DomainError):
    """Rates the calculation needs and does not have."""

    def __init__(self, missing: list[tuple[str, str, date]]) -> None:
        shown = "; ".join(
            _("%(base)s to %(quote)s on %(day)s") % {"base": b, "quote": q, "day": d.isoformat()}
            for b, q, d in missing[:5]
        )
        more = len(missing) - 5
        message = _("No FX rate for %(list)s.") % {"list": shown}
        if more > 0:
            message += " " + _("(and %(n)d more)") % {"n": more}
        super().__init__(message)
        self.missing = missing


def conversion_table(
    *, quote: str, needs: set[tuple[str, date]]
) -> dict[tuple[str, date], Decimal]:
    """Multipliers from each (currency, day) in ``needs`` into ``quote``.

    A rate entered the other way round is inverted (full precision). Raises
    ``MissingRates`` naming every (currency, day) without a rate.
    """
    needs = {(cur, day) for cur, day in needs if cur != quote}
    if not needs:
        return {}
    days = {day for _cur, day in needs}
    currencies = {cur for cur, _day in needs}
    direct: dict[tuple[str, date], Decimal] = {}
    for base, target, day, rate in FxRate.objects.filter(
        rate_on__in=days, base__in=currencies | {quote}, quote__in=currencies | {quote}
    ).values_list("base", "quote", "rate_on", "rate"):
        if target == quote and base in currencies:
            direct[(base, day)] = rate
        elif base == quote and target in currencies:
            direct.setdefault((target, day), Decimal(1) / rate)
    missing = sorted((cur, quote, day) for cur, day in needs if (cur, day) not in direct)
    if missing:
        raise MissingRates([(c, q, d) for c, q, d in sorted(missing, key=lambda m: (m[2], m[0]))])
    return {key: direct[key] for key in needs}
