"""Forms of the settlement run, agreement and FX pages.

They check shape only (required, types, ranges a widget can express); the rules
that need the database (overlapping runs or agreements, the basis along a
referral path, four eyes) live in the services, which raise ``ValidationError``
keyed by these field names.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.forms import StyledFormMixin
from core.money import CURRENCY_CHOICES
from merchants.models import Partner
from settlements.models import RevenueShareAgreement, SettlementRun

# An FX import is a table of rates, never a large file; this bounds memory use.
FX_IMPORT_MAX_BYTES = 2 * 1024 * 1024


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


def last_calendar_month(today: date | None = None) -> tuple[date, date]:
    """First and last day of the month before ``today`` (the usual run period)."""
    today = today or timezone.localdate()
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ``ValidationError`` on the form's fields (unknown keys on top)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        form.add_error(None, exc)


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------


class RunFilterForm(StyledFormMixin, forms.Form):
    compact = True

    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *SettlementRun.Status.choices],
    )
    currency = forms.ChoiceField(label=_("Currency"), required=False)

    def __init__(self, *args, currencies: list[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = [("", _("Any currency")), *((c, c) for c in currencies)]


class RunCreateForm(StyledFormMixin, forms.Form):
    period_start = forms.DateField(label=_("Period start"), widget=DateInput())
    period_end = forms.DateField(label=_("Period end"), widget=DateInput())
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            start, end = last_calendar_month()
            self.initial.setdefault("period_start", start)
            self.initial.setdefault("period_end", end)
            self.initial.setdefault("currency", settings.DEFAULT_CURRENCY)

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", _("The period must end on or after its start."))
        return data


class ApproveForm(StyledFormMixin, forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Optional; kept with your approval in the run's history."),
    )


class RejectForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("The preparer sees it on the run, which returns to draft."),
        error_messages={"required": _("Say why the run is rejected.")},
    )


class AdjustmentForm(StyledFormMixin, forms.Form):
    partner = forms.ModelChoiceField(label=_("Partner"), queryset=Partner.objects.none())
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=20,
        decimal_places=4,
        help_text=_("Positive to credit the partner, negative to debit."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, partners=None, on_run: set[int] = frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["partner"]
        if partners is None:
            return
        field.queryset = partners
        # Partners already on the run's statements first: they are the usual target.
        listed = [(p.pk, str(p)) for p in partners]
        first = [c for c in listed if c[0] in on_run]
        others = [c for c in listed if c[0] not in on_run]
        choices: list = [("", "---------")]
        if first:
            choices.append((_("On this run's statements"), first))
        if others:
            choices.append((_("Other partners") if first else _("Partners"), others))
        field.choices = choices


# ---------------------------------------------------------------------------
# Agreements
# ---------------------------------------------------------------------------


class AgreementFilterForm(StyledFormMixin, forms.Form):
    compact = True

    partner = forms.ModelChoiceField(
        label=_("Partner"),
        required=False,
        queryset=Partner.objects.none(),
        empty_label=_("All partners"),
    )

    def __init__(self, *args, partners=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            self.fields["partner"].queryset = partners


class AgreementForm(StyledFormMixin, forms.Form):
    partner = forms.ModelChoiceField(label=_("Partner"), queryset=Partner.objects.none())
    basis = forms.ChoiceField(label=_("Basis"), choices=RevenueShareAgreement.Basis.choices)
    tier_mode = forms.ChoiceField(
        label=_("Tier mode"), choices=RevenueShareAgreement.TierMode.choices
    )
    currency = forms.ChoiceField(label=_("Settlement currency"), choices=CURRENCY_CHOICES)
    valid_from = forms.DateField(label=_("Valid from"), widget=DateInput())
    valid_to = forms.DateField(
        label=_("Valid to"),
        required=False,
        widget=DateInput(),
        help_text=_("Leave empty for an open-ended agreement."),
    )
    rounding = forms.ChoiceField(
        label=_("Rounding"), choices=RevenueShareAgreement.Rounding.choices
    )
    minimum_payout = forms.DecimalField(
        label=_("Minimum payout"),
        max_digits=20,
        decimal_places=4,
        min_value=Decimal("0"),
        initial=Decimal("0"),
        help_text=_("Totals below this carry forward to the next run."),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, partners=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            self.fields["partner"].queryset = partners
        self.initial.setdefault("currency", settings.DEFAULT_CURRENCY)
        self.fields["partner"].widget.attrs["data-testid"] = "agreement-partner"

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_to")
        if start and end and end < start:
            self.add_error("valid_to", _("The end date must not be before the start date."))
        return data

    def service_fields(self) -> dict:
        """The agreement's own fields, as ``agreement_create`` takes them."""
        return {k: v for k, v in self.cleaned_data.items() if k != "partner"}


class TierForm(StyledFormMixin, forms.Form):
    from_volume = forms.DecimalField(
        label=_("From monthly volume"), max_digits=20, decimal_places=4, min_value=Decimal("0")
    )
    rate_bps = forms.DecimalField(
        label=_("Rate (bps)"),
        max_digits=9,
        decimal_places=4,
        min_value=Decimal("0"),
        max_value=Decimal("10000"),
        help_text=_("1 bps = 0.01 %"),
    )


class BaseTierFormSet(forms.BaseFormSet):
    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def tiers(self) -> list[dict]:
        """Kept rows as the service takes them; blank added rows are skipped."""
        return [
            {"from_volume": f.cleaned_data["from_volume"], "rate_bps": f.cleaned_data["rate_bps"]}
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]

    def add_service_error(self, error) -> None:
        # The formset's own error list is what the template shows above the rows.
        self._non_form_errors = self.error_class(
            [*self.non_form_errors(), *ValidationError(error).messages],
            error_class="nonform",
            renderer=self.renderer,
        )


TierFormSet = forms.formset_factory(
    TierForm,
    formset=BaseTierFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    can_delete=True,
)


class AgreementEndForm(StyledFormMixin, forms.Form):
    valid_to = forms.DateField(label=_("Last day"), widget=DateInput())


# ---------------------------------------------------------------------------
# FX rates
# ---------------------------------------------------------------------------


class FxFilterForm(StyledFormMixin, forms.Form):
    compact = True

    currency = forms.ChoiceField(
        label=_("Currency"), required=False, choices=[("", _("Any currency")), *CURRENCY_CHOICES]
    )
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput())


class FxRateForm(StyledFormMixin, forms.Form):
    rate_on = forms.DateField(label=_("Date"), widget=DateInput())
    base = forms.ChoiceField(
        label=_("From currency"), choices=[("", "---------"), *CURRENCY_CHOICES]
    )
    quote = forms.ChoiceField(label=_("To currency"), choices=CURRENCY_CHOICES)
    rate = forms.DecimalField(
        label=_("Rate"),
        max_digits=24,
        decimal_places=10,
        min_value=Decimal("0.0000000001"),
        help_text=_("How many units of the “to” currency one unit of the “from” currency buys."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("rate_on", timezone.localdate())
            self.initial.setdefault("quote", settings.DEFAULT_CURRENCY)


class FxImportForm(StyledFormMixin, forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("Columns date,base,quote,rate; dates as YYYY-MM-DD; UTF-8."),
    )

    def clean_file(self) -> str:
        """The file's text; refuses what is too large or not UTF-8."""
        upload = self.cleaned_data["file"]
        if upload.size > FX_IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is larger than %(mb)d MB."),
                params={"mb": FX_IMPORT_MAX_BYTES // (1024 * 1024)},
            )
        try:
            # utf-8-sig: spreadsheet programs often start CSVs with a byte-order mark.
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(_("The file is not UTF-8 text; save it as CSV UTF-8.")) from None
