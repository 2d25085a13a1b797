"""Files of an approved settlement run: payout CSV, ERP journal CSV, a PDF per statement.

The files are generated once, by the export that moves the run from approved
to exported, and stored as ``SettlementExport`` rows; later exports and
downloads hand back the same bytes, never regenerated ones, so what the bank
paid and what the ledger booked are the files on record.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone, translation
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from core import audit, spreadsheet
from core.exceptions import DomainError, TransitionError
from core.models import SensitiveAccess, User
from core.money import minor_units, quantize
from merchants.models import BankAccount
from settlements import selectors
from settlements.models import (
    Adjustment,
    SettlementExport,
    SettlementRun,
    Statement,
    StatementLine,
)

EXPORT_PERMISSION = "settlements.export_settlementrun"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
PDF_CONTENT_TYPE = "application/pdf"

# Machine-readable files keep fixed English headers whatever the language of
# the person exporting: banks and ERP importers map columns by name.
PAYOUT_COLUMNS = (
    "partner_name", "partner_id", "account_holder", "bank_name", "swift_code",
    "account_number", "amount", "currency", "reference",
)  # fmt: skip
JOURNAL_COLUMNS = (
    "journal_date", "reference", "partner_id", "partner_name", "account_code",
    "account_name", "debit", "credit", "currency", "description",
)  # fmt: skip
EXPENSE_ACCOUNT_NAME = "Revenue share expense"
PAYABLE_ACCOUNT_NAME = "Partner payables"


@dataclass(frozen=True)
class _File:
    kind: str
    filename: str
    content_type: str
    content: bytes
    statement: Statement | None = None


def format_amount(amount: Decimal, currency: str, *, grouped: bool = False) -> str:
    """Exactly the currency's minor digits: ``12.50`` HKD, ``1250`` JPY."""
    places = minor_units(currency)
    value = quantize(amount, currency)
    return f"{value:,.{places}f}" if grouped else f"{value:.{places}f}"


def statement_reference(statement: Statement) -> str:
    return statement.reference or f"RS-{statement.run_id}-{statement.partner_id}"


# ---------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------


@transaction.atomic
def settlement_run_export(*, run: SettlementRun, actor: User) -> list[SettlementExport]:
    """Export an approved run once; an exported run returns the files it stored.

    Needs ``export_settlementrun``. Locks the run, so two finance users pressing
    Export at once produce one set of files: the second waits, then finds the
    run exported and gets the first one's files. Refused as a whole (nothing
    written, run left approved) when a partner with an amount payable has no
    primary payout bank account, since the bank file would be incomplete.
    """
    if not actor.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied
    run = SettlementRun.objects.select_for_update().get(pk=run.pk)
    if run.status == SettlementRun.Status.EXPORTED:
        return list(run.exports.select_related("statement", "created_by"))
    if run.status != SettlementRun.Status.APPROVED:
        raise TransitionError(
            run,
            SettlementRun.Status.EXPORTED,
            _("Only an approved run can be exported; this run is %(status)s.")
            % {"status": run.get_status_display()},
        )

    statements = list(
        selectors.statement_list(run=run).prefetch_related(
            Prefetch("lines", queryset=StatementLine.objects.select_related("merchant"))
        )
    )
    payable = [s for s in statements if s.payable > 0]
    for statement in payable:
        if quantize(statement.payable, statement.currency) != statement.payable:
            # Rounding here would pay an amount nobody approved.
            raise DomainError(
                _("The amount payable to %(partner)s has more decimals than %(currency)s allows.")
                % {"partner": statement.partner.name, "currency": statement.currency}
            )
    accounts = _payout_accounts([s.partner_id for s in payable], run.currency)
    missing = [s.partner.name for s in payable if s.partner_id not in accounts]
    if missing:
        raise DomainError(
            _(
                "Nothing was exported: these partners have an amount payable but no primary "
                "payout bank account: %(partners)s. Add one on the partner page, then export."
            )
            % {"partners": ", ".join(missing)}
        )
    numbers = _read_account_numbers(accounts.values(), actor=actor)

    adjustments: dict[int, list[Adjustment]] = defaultdict(list)
    for adjustment in run.adjustments.all():
        adjustments[adjustment.partner_id].append(adjustment)

    stem = f"run-{run.pk}-{run.currency}-{run.period_end.isoformat()}"
    files = [
        _File(
            SettlementExport.Kind.PAYOUT_CSV,
            f"{stem}-payout.csv",
            CSV_CONTENT_TYPE,
            payout_csv(payable, accounts, numbers),
        ),
        _File(
            SettlementExport.Kind.JOURNAL_CSV,
            f"{stem}-journal.csv",
            CSV_CONTENT_TYPE,
            journal_csv(payable, journal_on=run.period_end),
        ),
    ]
    generated_at = timezone.localtime()
    for statement in statements:
        reference = get_valid_filename(statement_reference(statement))
        files.append(
            _File(
                SettlementExport.Kind.STATEMENT_PDF,
                f"{stem}-statement-{reference}.pdf",
                PDF_CONTENT_TYPE,
                statement_pdf(
                    run,
                    statement,
                    adjustments.get(statement.partner_id, []),
                    generated_at=generated_at,
                ),
                statement,
            )
        )

    for file in files:
        export = SettlementExport(
            run=run,
            kind=file.kind,
            statement=file.statement,
            filename=file.filename,
            content_type=file.content_type,
            content=file.content,
            sha256=hashlib.sha256(file.content).hexdigest(),
            created_by=actor,
        )
        audit.stamp(export, actor=actor, reason="exported")
        export.save()
    run.status = SettlementRun.Status.EXPORTED
    audit.stamp(run, actor=actor, reason="exported")
    run.save(update_fields=["status", "updated_at"])
    return list(run.exports.select_related("statement", "created_by"))


@transaction.atomic
def settlement_export_download(
    *, export: SettlementExport, actor: User, ip_address: str | None = None
) -> SettlementExport:
    """Hand out a stored file; the payout file's clear account numbers are a recorded read.

    The payout file is for those who pay (``export_settlementrun``): readers of
    runs such as compliance get the journal and statements, not bank numbers.
    """
    if export.kind == SettlementExport.Kind.PAYOUT_CSV:
        if not actor.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        _record_access(
            actor=actor,
            label=SettlementExport._meta.label_lower,
            object_id=export.pk,
            field="content",
            reason="payout export download",
            ip_address=ip_address,
        )
    return export


def _payout_accounts(partner_ids: list[int], currency: str) -> dict[int, BankAccount]:
    """Per partner: its primary account in ``currency``, else its primary account.

    The oldest wins among equals, so the choice does not depend on row order.
    Numbers are deferred: only the chosen accounts are decrypted, and recorded.
    """
    chosen: dict[int, BankAccount] = {}
    candidates = (
        BankAccount.objects.filter(partner_id__in=partner_ids, is_primary=True)
        .defer("account_number")
        .order_by("pk")
    )
    for account in candidates:
        current = chosen.get(account.partner_id)
        if current is None or (current.currency != currency and account.currency == currency):
            chosen[account.partner_id] = account
    return chosen


def _read_account_numbers(accounts, *, actor: User) -> dict[int, str]:
    """Clear account numbers for the bank file; each read is on record (PCI DSS 10.2.1.1)."""
    accounts = list(accounts)
    numbers = dict(
        BankAccount.objects.filter(pk__in=[a.pk for a in accounts]).values_list(
            "pk", "account_number"
        )
    )
    for account in accounts:
        _record_access(
            actor=actor,
            label=BankAccount._meta.label_lower,
            object_id=account.pk,
            field="account_number",
            reason="payout export",
        )
    return numbers


def _record_access(
    *,
    actor: User,
    label: str,
    object_id: int,
    field: str,
    reason: str,
    ip_address: str | None = None,
) -> None:
    access = SensitiveAccess(
        user=actor,
        object_label=label,
        object_id=str(object_id),
        field=field,
        reason=reason,
        ip_address=ip_address,
    )
    audit.stamp(access, actor=actor, reason=reason)
    access.save()


# ---------------------------------------------------------------------------
# CSV files
# ---------------------------------------------------------------------------


def _csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    # Through the one safe writer: a partner named "=HYPERLINK(…)" must not
    # run on the finance desk.
    return spreadsheet.csv_bytes(header, rows, lineterminator="\r\n")


def payout_csv(
    statements: list[Statement], accounts: dict[int, BankAccount], numbers: dict[int, str]
) -> bytes:
    """One transfer per statement with an amount payable, in full and exact."""
    rows = []
    for statement in statements:
        account = accounts[statement.partner_id]
        rows.append(
            [
                statement.partner.name,
                str(statement.partner_id),
                account.account_holder,
                account.bank_name,
                account.swift_code,
                numbers[account.pk],
                format_amount(statement.payable, statement.currency),
                statement.currency,
                statement_reference(statement),
            ]
        )
    return _csv_bytes(PAYOUT_COLUMNS, rows)


def journal_csv(statements: list[Statement], *, journal_on: date) -> bytes:
    """Double entry per statement: revenue share expense to partner payables."""
    expense = getattr(settings, "SETTLEMENT_JOURNAL_EXPENSE_ACCOUNT", "6100")
    payable = getattr(settings, "SETTLEMENT_JOURNAL_PAYABLE_ACCOUNT", "2100")
    rows: list[list[str]] = []
    debits: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    credits: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for statement in statements:
        amount = quantize(statement.payable, statement.currency)
        reference = statement_reference(statement)
        text = format_amount(amount, statement.currency)
        zero = format_amount(Decimal(0), statement.currency)
        description = f"Revenue share {reference}"
        common = [journal_on.isoformat(), reference, str(statement.partner_id)]
        rows.append(
            [
                *common,
                statement.partner.name,
                expense,
                EXPENSE_ACCOUNT_NAME,
                text,
                zero,
                statement.currency,
                description,
            ]
        )
        rows.append(
            [
                *common,
                statement.partner.name,
                payable,
                PAYABLE_ACCOUNT_NAME,
                zero,
                text,
                statement.currency,
                description,
            ]
        )
        debits[(reference, statement.currency)] += amount
        credits[(reference, statement.currency)] += amount
    # An unbalanced journal must never reach the ERP: check every entry and the
    # totals per currency before a byte is written.
    totals_debit: dict[str, Decimal] = defaultdict(Decimal)
    totals_credit: dict[str, Decimal] = defaultdict(Decimal)
    for key in debits.keys() | credits.keys():
        if debits[key] != credits[key]:
            raise DomainError(_("The journal does not balance; nothing was exported."))
        totals_debit[key[1]] += debits[key]
        totals_credit[key[1]] += credits[key]
    if totals_debit != totals_credit:
        raise DomainError(_("The journal does not balance; nothing was exported."))
    return _csv_bytes(JOURNAL_COLUMNS, rows)


# ---------------------------------------------------------------------------
# Statement PDF
# ---------------------------------------------------------------------------

# The built-in PDF fonts cover Windows-1252 only. Characters outside it
# (Chinese merchant names, for one) are printed as their closest Latin form
# or "?" instead of failing the whole export.
PDF_ENCODING = "windows-1252"


def pdf_text(value: object) -> str:
    out = []
    for char in str(value):
        for candidate in (char, _strip_marks(char)):
            try:
                if candidate:
                    candidate.encode(PDF_ENCODING)
                    out.append(candidate)
                    break
            except UnicodeEncodeError:
                continue
        else:
            out.append("?")
    return "".join(out)


def _strip_marks(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _rate(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return format(value.normalize(), "f")


class _StatementPDF(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(110)
        self.cell(0, 5, pdf_text(self.footer_text), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"{self.page_no()}/{{nb}}", align="R")


def statement_pdf(
    run: SettlementRun,
    statement: Statement,
    adjustments: list[Adjustment],
    *,
    generated_at: datetime,
) -> bytes:
    # Rendered in English: the built-in fonts cannot print the Chinese
    # translations, and a partner-facing document must be readable.
    with translation.override("en"):
        return _statement_pdf(run, statement, adjustments, generated_at=generated_at)


def _statement_pdf(
    run: SettlementRun,
    statement: Statement,
    adjustments: list[Adjustment],
    *,
    generated_at: datetime,
) -> bytes:
    currency = statement.currency

    def money(amount: Decimal | None) -> str:
        return "-" if amount is None else format_amount(amount, currency, grouped=True)

    pdf = _StatementPDF(format="A4")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_title(pdf_text(f"Statement {statement_reference(statement)}"))
    pdf.set_author("PayCRM")
    pdf.set_creation_date(generated_at)
    pdf.footer_text = _("Generated by PayCRM on %(when)s") % {
        "when": generated_at.strftime("%Y-%m-%d %H:%M %Z")
    }
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, "PayCRM", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 7, pdf_text(_("Revenue share statement")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    header = [
        (_("Partner"), f"{statement.partner.name} (#{statement.partner_id})"),
        (
            _("Period"),
            f"{run.period_start.isoformat()} - {run.period_end.isoformat()}",
        ),
        (_("Currency"), currency),
        (_("Reference"), statement_reference(statement)),
    ]
    for label, value in header:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(32, 6, pdf_text(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, pdf_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, pdf_text(_("Merchants")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 8)
    lines = list(statement.lines.all())
    flagged = False
    if lines:
        with pdf.table(
            width=190,
            align="LEFT",
            col_widths=(62, 28, 28, 28, 18, 26),
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
            line_height=5,
        ) as table:
            heading = table.row()
            for title in (
                _("Merchant"),
                _("Volume"),
                _("Basis"),
                _("Tier reached"),
                _("Rate (bps)"),
                _("Share"),
            ):
                heading.cell(pdf_text(title))
            for line in lines:
                name = line.merchant.legal_name
                if line.negative_spread:
                    flagged = True
                    name += " *"
                row = table.row()
                row.cell(pdf_text(name))
                row.cell(money(line.volume))
                row.cell(money(line.basis))
                row.cell(money(line.tier_from))
                row.cell(_rate(line.rate_bps))
                row.cell(money(line.share))
        if flagged:
            pdf.set_font("Helvetica", "I", 7)
            pdf.multi_cell(
                0,
                4,
                pdf_text(
                    _(
                        "* Negative spread: the sub-agent's rate is above this partner's, "
                        "so the line pays nothing."
                    )
                ),
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
    else:
        pdf.cell(
            0,
            6,
            pdf_text(_("No merchant activity in this period.")),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    pdf.ln(4)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, pdf_text(_("Adjustments")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 8)
    if adjustments:
        with pdf.table(col_widths=(154, 26), text_align=("LEFT", "RIGHT"), line_height=5) as table:
            heading = table.row()
            heading.cell(pdf_text(_("Reason")))
            heading.cell(pdf_text(_("Amount")))
            for adjustment in adjustments:
                row = table.row()
                row.cell(pdf_text(adjustment.reason))
                row.cell(money(adjustment.amount))
    else:
        pdf.cell(0, 6, pdf_text(_("None.")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    summary = [
        (_("Merchant shares"), statement.lines_total, False),
        (_("Adjustments"), statement.adjustments_total, False),
        (_("Carried in from earlier runs"), statement.carried_in, False),
        (_("Total"), statement.total, True),
        (_("Payable"), statement.payable, True),
        (_("Carried forward"), statement.carried_out, False),
    ]
    for label, amount, bold in summary:
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.cell(140, 6, pdf_text(label))
        pdf.cell(
            50, 6, f"{money(amount)} {currency}", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    if statement.carried_out > 0:
        pdf.set_font("Helvetica", "I", 8)
        pdf.multi_cell(
            0,
            4,
            pdf_text(
                _(
                    "The amount carried forward is below the minimum payout and is added "
                    "to the next statement."
                )
            ),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    return bytes(pdf.output())
