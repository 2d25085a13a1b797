"""Forms of the ledger pages: the transaction filters and the CSV import.

The import form checks the file's shape (size, encoding, columns, row count);
every rule about a transaction stays in ``settlements.services.ingestion``.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.forms import SignedUploadMixin, StyledFormMixin
from settlements.models import Transaction, TransactionSource
from settlements.services import ledger_rules

MAX_ROWS = 50_000
MAX_BYTES = 10 * 1024 * 1024
REQUIRED_COLUMNS = ("external_id", "kind", "amount", "currency", "occurred_at")


class TransactionFilterForm(StyledFormMixin, forms.Form):
    compact = True

    q = forms.CharField(
        required=False,
        label=_("Search"),
        widget=forms.SearchInput(attrs={"placeholder": _("External id or customer reference")}),
    )
    kind = forms.ChoiceField(
        required=False, label=_("Kind"), choices=[("", _("Any kind")), *Transaction.Kind.choices]
    )
    source = forms.ChoiceField(required=False, label=_("Source"))
    currency = forms.CharField(
        required=False,
        label=_("Currency"),
        max_length=3,
        widget=forms.TextInput(attrs={"placeholder": _("Currency"), "size": 6}),
    )
    date_from = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, sources=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            ("", _("Any source")),
            *((s.code, s.name or s.code) for s in sources),
        ]


class ImportRefused(Exception):
    """The file as a whole cannot be imported."""


class TransactionImportForm(StyledFormMixin, SignedUploadMixin):
    """First post: the file (dry run). Confirmation: the same text, signed, carried back."""

    SALT = "paycrm.settlements.transaction-import"
    MAX_BYTES = MAX_BYTES

    source = forms.ModelChoiceField(
        label=_("Source"), queryset=TransactionSource.objects.none(), to_field_name="code"
    )
    field_order = ["source", "file", "only_valid"]

    def __init__(self, *args, sources=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if sources is not None:
            self.fields["source"].queryset = sources

    def text(self) -> str:
        """The CSV text: carried back on confirmation, otherwise the upload's."""
        if self.cleaned_data["payload"]:
            return self.cleaned_data["payload"]
        raw = self.cleaned_data["file"].read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ImportRefused(
                gettext("The file is larger than 10 MB; split it into smaller files.")
            )
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRefused(
                gettext("The file is not UTF-8 text; save it as CSV UTF-8.")
            ) from None


def read_csv(text: str) -> list[tuple[int, dict[str, str]]]:
    """(file line, item) per record; blank cells are left out of the item.

    The line is the one a spreadsheet or editor shows for the record's end,
    the header being line 1.
    """
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in (reader.fieldnames or [])]
    columns = ledger_rules.ITEM_FIELDS
    unknown = [h for h in headers if h and h not in columns]
    if unknown:
        raise ImportRefused(
            gettext("Unknown column(s): %(cols)s. Expected: %(all)s.")
            % {"cols": ", ".join(unknown), "all": ", ".join(columns)}
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if "merchant" not in headers and "mid" not in headers:
        missing.append("merchant / mid")
    if missing:
        raise ImportRefused(
            gettext("The file lacks the column(s): %(cols)s. Expected: %(all)s.")
            % {"cols": ", ".join(missing), "all": ", ".join(columns)}
        )
    reader.fieldnames = headers
    rows: list[tuple[int, dict[str, str]]] = []
    for record in reader:
        if len(rows) >= MAX_ROWS:
            raise ImportRefused(gettext("At most %(n)d rows per file.") % {"n": MAX_ROWS})
        item: dict[str, str] = {}
        for key, value in record.items():
            if key is None:
                # Cells beyond the header: reported by the service as an unknown field.
                if any(v.strip() for v in value):
                    item["(extra cells)"] = ", ".join(value)
                continue
            value = (value or "").strip()
            if value:
                item[key] = value
        if item:
            rows.append((reader.line_num, item))
    if not rows:
        raise ImportRefused(gettext("The file has a header but no rows."))
    return rows
