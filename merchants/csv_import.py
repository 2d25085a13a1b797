"""CSV import of merchants and contacts, with a dry run and a row-by-row report.

Each row goes through the same service as a page or the API would use, inside
its own savepoint, so every rule is checked once and in one place. The whole
import is one transaction: a dry run, or an import with a bad row when the user
did not choose "only the valid rows", is rolled back and writes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.models import User
from merchants import selectors, services
from merchants.models import Merchant

MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024

MERCHANT_COLUMNS = (
    "legal_name", "trading_name", "registration_number", "country", "business_type", "mcc",
    "website", "expected_monthly_volume", "volume_currency", "risk_level", "tags", "owner",
)  # fmt: skip
MERCHANT_REQUIRED = ("legal_name", "registration_number", "country", "business_type", "mcc")
CONTACT_COLUMNS = (
    "merchant", "merchant_country", "name", "title", "email", "phone", "is_primary", "notes",
)  # fmt: skip
CONTACT_REQUIRED = ("merchant", "merchant_country", "name")
KINDS = {
    "merchants": (MERCHANT_COLUMNS, MERCHANT_REQUIRED),
    "contacts": (CONTACT_COLUMNS, CONTACT_REQUIRED),
}


@dataclass(frozen=True)
class RowError:
    row: int  # as in a spreadsheet: the header is row 1
    column: str
    message: str


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    valid: int = 0
    created: int = 0
    written: bool = False
    errors: list[RowError] = field(default_factory=list)
    preview: list[dict[str, str]] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return len({e.row for e in self.errors if e.row})


class ImportRefused(Exception):
    """The file as a whole cannot be imported (headers, size, encoding)."""


class _Rollback(Exception):
    pass


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise ImportRefused(_("The file is larger than 5 MB; split it into smaller files."))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(_("The file is not UTF-8 text; save it as CSV UTF-8.")) from exc


def run(*, user: User, kind: str, text: str, commit: bool, only_valid: bool) -> ImportReport:
    """Validate (and when ``commit``, write) the rows of a CSV text."""
    columns, required = KINDS[kind]
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in headers]
    if missing:
        raise ImportRefused(
            _("The file lacks the column(s): %(cols)s. Expected: %(all)s.")
            % {"cols": ", ".join(missing), "all": ", ".join(columns)}
        )
    unknown = [h for h in headers if h and h not in columns]
    if unknown:
        raise ImportRefused(_("Unknown column(s): %(cols)s.") % {"cols": ", ".join(unknown)})
    # Each record with the file line it ends on, so a report points at the line
    # an editor shows even after blank lines.
    rows = []
    for record in reader:
        rows.append((reader.line_num, record))
        if len(rows) > MAX_ROWS:
            break
    if len(rows) > MAX_ROWS:
        raise ImportRefused(_("At most %(n)d rows per file.") % {"n": MAX_ROWS})
    if not rows:
        raise ImportRefused(_("The file has a header but no rows."))

    report = ImportReport(kind=kind, rows=len(rows))
    importer = _merchant_row if kind == "merchants" else _contact_row
    seen: dict[tuple, int] = {}
    try:
        with transaction.atomic():
            for line, raw in rows:
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
                errors = _import_row(importer, user, row, line, seen, kind)
                if errors:
                    report.errors += errors
                    continue
                report.valid += 1
                if len(report.preview) < 20:
                    report.preview.append({c: row.get(c, "") for c in columns if row.get(c)})
            if not commit or (report.errors and not only_valid):
                raise _Rollback
            report.created = report.valid
            report.written = True
    except _Rollback:
        pass
    return report


def _import_row(
    importer, user: User, row: dict, index: int, seen: dict, kind: str
) -> list[RowError]:
    try:
        with transaction.atomic():  # a savepoint: a bad row leaves nothing behind
            importer(user, row, index, seen)
    except ValidationError as exc:
        # Whole-record rules of a merchant are about its registration number
        # (unique per country); name that column rather than none.
        fallback = "registration_number" if kind == "merchants" else ""
        return _row_errors(exc, index, fallback)
    except PermissionDenied:
        return [RowError(index, "", _("You may not write this record."))]
    return []


def _row_errors(exc: ValidationError, index: int, fallback: str = "") -> list[RowError]:
    if not hasattr(exc, "error_dict"):
        return [RowError(index, fallback, m) for m in exc.messages]
    errors = []
    for name, messages in exc.message_dict.items():
        column = fallback if name == "__all__" else name
        errors += [RowError(index, column, message) for message in messages]
    return errors


def _decimal(row: dict, column: str) -> Decimal | None:
    value = row.get(column, "").replace(",", "")
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValidationError(
            {column: _("“%(value)s” is not a number.") % {"value": value}}
        ) from None


def _merchant_row(user: User, row: dict, index: int, seen: dict) -> None:
    key = (row.get("country", "").upper(), row.get("registration_number", ""))
    if key in seen:
        raise ValidationError(
            {
                "registration_number": _("Same country and registration number as row %(row)d.")
                % {"row": seen[key]}
            }
        )
    seen[key] = index
    empty = [c for c in MERCHANT_REQUIRED if not row.get(c)]
    if empty:
        raise ValidationError({c: _("This field is required.") for c in empty})
    problems: dict[str, list[str]] = {}
    fields: dict[str, Any] = {
        "legal_name": row["legal_name"],
        "trading_name": row.get("trading_name", ""),
        "registration_number": row["registration_number"],
        "country": row["country"].upper(),
        "business_type": row["business_type"],
        "mcc": row["mcc"],
        "website": row.get("website", ""),
        "tags": row.get("tags", ""),
    }
    try:
        volume = _decimal(row, "expected_monthly_volume")
    except ValidationError as exc:
        problems.update(exc.message_dict)
        volume = None
    if volume is not None:
        fields["expected_monthly_volume"] = volume
    if row.get("volume_currency"):
        fields["volume_currency"] = row["volume_currency"].upper()
    if row.get("risk_level"):
        fields["risk_level"] = row["risk_level"].lower()
    if row.get("owner"):
        if not user.has_perm("merchants.assign_merchant"):
            raise ValidationError({"owner": _("You may not assign merchants to other owners.")})
        owner = selectors.merchant_owner_choices(user=user).filter(username=row["owner"]).first()
        if owner is None:
            raise ValidationError({"owner": _("No active sales user with this username.")})
        fields["owner"] = owner
    # The service still runs when a cell could not be parsed, so that the report
    # lists every problem of the row at once; the savepoint undoes the write.
    try:
        services.merchant_create(actor=user, reason="import", **fields)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            problems.setdefault(name, []).extend(messages)
    if problems:
        raise ValidationError(problems)


def _contact_row(user: User, row: dict, index: int, seen: dict) -> None:
    empty = [c for c in CONTACT_REQUIRED if not row.get(c)]
    if empty:
        raise ValidationError({c: _("This field is required.") for c in empty})
    # Only merchants the importer can see; the message never says whether
    # another merchant with that number exists.
    merchant: Merchant | None = (
        selectors.merchant_list(user=user)
        .filter(registration_number=row["merchant"], country=row["merchant_country"].upper())
        .first()
    )
    if merchant is None:
        raise ValidationError(
            {"merchant": _("No merchant with this registration number that you can access.")}
        )
    primary = row.get("is_primary", "").lower()
    if primary not in ("", "true", "false", "yes", "no", "1", "0"):
        raise ValidationError({"is_primary": _("Use true or false.")})
    services.contact_create(
        actor=user,
        merchant=merchant,
        name=row["name"],
        title=row.get("title", ""),
        email=row.get("email", ""),
        phone=row.get("phone", ""),
        is_primary=primary in ("true", "yes", "1"),
        notes=row.get("notes", ""),
    )
