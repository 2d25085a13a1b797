from django import forms
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField

from core.forms import SignedUploadMixin, StyledFormMixin
from core.models import Team, User
from core.money import CURRENCY_CHOICES
from merchants import csv_import, services
from merchants.models import (
    Activity,
    BankAccount,
    BeneficialOwner,
    Contact,
    Document,
    Merchant,
    Partner,
    PaymentMethod,
)


class MerchantForm(StyledFormMixin, forms.ModelForm):
    """Shape of a merchant. Rules that need the database live in the services."""

    tags = forms.CharField(
        label=_("Tags"),
        required=False,
        help_text=_("Comma-separated, e.g. retail, pos, priority."),
    )

    class Meta:
        model = Merchant
        # Status only when creating (a lead or in onboarding); afterwards it
        # changes through its own action (merchant_change_status), risk level
        # and MID never here.
        fields = list(services.CREATE_FIELDS)
        widgets = {"volume_currency": forms.Select(choices=CURRENCY_CHOICES)}

    def __init__(
        self, *args, owner_choices=None, can_assign: bool = False, can_set_risk: bool = False,
        **kwargs,
    ) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        if self.instance.pk or not can_set_risk:
            del self.fields["risk_level"]
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags or [])
            del self.fields["status"]
        else:
            allowed = {Merchant.Status.LEAD, Merchant.Status.ONBOARDING}
            self.fields["status"].choices = [c for c in Merchant.Status.choices if c[0] in allowed]
        self.fields["partner"].queryset = Partner.objects.filter(status=Partner.Status.ACTIVE)
        self.fields["team"].queryset = Team.objects.all()
        if can_assign and owner_choices is not None:
            self.fields["owner"].queryset = owner_choices
        else:
            # Only users with the assign right pick owners and teams.
            del self.fields["owner"]
            del self.fields["team"]
        self.fields["mcc"].widget.attrs.update({"inputmode": "numeric", "maxlength": 4})

    def _post_clean(self) -> None:
        # Model validation runs in the service, once, with the full picture.
        pass


class MerchantFilterForm(StyledFormMixin, forms.Form):
    compact = True

    q = forms.CharField(
        required=False,
        label=_("Search"),
        widget=forms.SearchInput(attrs={"placeholder": _("Name, registration no. or MID")}),
    )
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *Merchant.Status.choices]
    )
    risk_level = forms.ChoiceField(
        required=False, choices=[("", _("Any risk")), *Merchant.RiskLevel.choices]
    )
    country = LazyTypedChoiceField(required=False, choices=[("", _("Any country")), *countries])
    owner = forms.ModelChoiceField(required=False, queryset=None, empty_label=_("Any owner"))

    def __init__(self, *args, owners=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners


class ContactForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "title", "email", "phone", "is_primary", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}


class OwnerForm(StyledFormMixin, forms.ModelForm):
    id_number = forms.CharField(label=_("ID / passport number"), max_length=40)

    class Meta:
        model = BeneficialOwner
        fields = ["full_name", "nationality", "date_of_birth", "ownership_percent", "is_pep"]
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def _post_clean(self) -> None:
        pass  # the service validates, with the other owners' shares in view


class BankAccountForm(StyledFormMixin, forms.ModelForm):
    account_number = forms.CharField(
        label=_("Account number or IBAN"),
        max_length=40,
        help_text=_("Hong Kong: bank code, branch code, account number (e.g. 004-123-456789)."),
    )

    class Meta:
        model = BankAccount
        fields = ["account_holder", "bank_name", "swift_code", "country", "currency", "is_primary"]
        widgets = {"currency": forms.Select(choices=CURRENCY_CHOICES)}

    def _post_clean(self) -> None:
        pass


class DocumentForm(StyledFormMixin, forms.Form):
    doc_type = forms.ChoiceField(label=_("Type"), choices=Document.Type.choices)
    file = forms.FileField(
        label=_("File"), help_text=_("PDF, JPEG or PNG, up to 10 MB. A new upload adds a version.")
    )
    expires_on = forms.DateField(
        label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class DocumentReviewForm(StyledFormMixin, forms.Form):
    status = forms.ChoiceField(
        choices=[(Document.Status.ACCEPTED, _("Accept")), (Document.Status.REJECTED, _("Reject"))]
    )
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class ActivityForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Activity
        fields = ["kind", "subject", "body", "occurred_at", "due_on", "assignee"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 2}),
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "due_on": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(self, *args, assignees=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (
            assignees if assignees is not None else User.objects.none()
        )
        self.fields["assignee"].required = False
        self.fields["occurred_at"].required = False
        self.fields["occurred_at"].initial = None  # empty means "now", to the second
        self.fields["occurred_at"].help_text = _("Leave empty for now.")
        self.fields["occurred_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]

    def _post_clean(self) -> None:
        pass


class ContractForm(StyledFormMixin, forms.Form):
    starts_on = forms.DateField(
        label=_("Starts on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(
        label=_("Ends on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class PricingPlanForm(StyledFormMixin, forms.Form):
    """A plan with a percentage and a fixed fee per payment method (blank = not offered)."""

    name = forms.CharField(label=_("Plan name"), max_length=100)
    currency = forms.ChoiceField(label=_("Fee currency"), choices=CURRENCY_CHOICES)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for value, label in PaymentMethod.choices:
            self.fields[f"{value}_percent"] = forms.DecimalField(
                label=_("%(method)s rate %%") % {"method": label},
                required=False,
                min_value=0,
                max_value=100,
                decimal_places=4,
            )
            self.fields[f"{value}_fixed"] = forms.DecimalField(
                label=_("%(method)s fixed fee") % {"method": label},
                required=False,
                min_value=0,
                decimal_places=4,
            )
        for name in self.fields:
            if name.endswith(("_percent", "_fixed")):
                self.fields[name].widget.attrs["class"] = "form-control form-control-sm"

    def method_rows(self):
        return [
            (label, self[f"{value}_percent"], self[f"{value}_fixed"])
            for value, label in PaymentMethod.choices
        ]

    def rates(self) -> list[dict]:
        rows = []
        for value, _label in PaymentMethod.choices:
            percent = self.cleaned_data.get(f"{value}_percent")
            fixed = self.cleaned_data.get(f"{value}_fixed")
            if percent is not None or fixed is not None:
                rows.append({"method": value, "percent": percent or 0, "fixed_fee": fixed or 0})
        return rows


class StatusChangeForm(forms.Form):
    """The merchant page's status move; the service decides who may make it."""

    status = forms.ChoiceField(choices=Merchant.Status.choices)
    reason = forms.CharField(max_length=300, required=False)


class RiskLevelForm(forms.Form):
    risk_level = forms.ChoiceField(choices=Merchant.RiskLevel.choices)
    reason = forms.CharField(max_length=300)


class TransferForm(StyledFormMixin, forms.Form):
    new_owner = forms.ModelChoiceField(label=_("New owner"), queryset=None)
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, owners=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].queryset = owners


class PartnerForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Partner
        fields = ["name", "kind", "parent", "status"]

    def _post_clean(self) -> None:
        pass


class ImportForm(StyledFormMixin, SignedUploadMixin):
    """First post: the file (dry run). Confirmation: the same text, carried back."""

    SALT = "paycrm.merchants.import"
    MAX_BYTES = csv_import.MAX_BYTES

    kind = forms.ChoiceField(
        label=_("Import"), choices=[("merchants", _("Merchants")), ("contacts", _("Contacts"))]
    )
    field_order = ["kind", "file", "only_valid"]

    def __init__(self, *args, kinds=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [c for c in self.fields["kind"].choices if c[0] in kinds]


class ContractSignForm(forms.Form):
    signed_on = forms.DateField(label=_("Signed on"))
    signed_by = forms.CharField(label=_("Signed by"), max_length=200)
