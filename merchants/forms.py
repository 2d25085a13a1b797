from django import forms
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_countries.fields import LazyTypedChoiceField

from core.forms import StyledFormMixin
from core.models import Team
from core.money import CURRENCY_CHOICES
from merchants import services
from merchants.models import Merchant, Partner


class MerchantForm(StyledFormMixin, forms.ModelForm):
    """Shape of a merchant. Rules that need the database live in the services."""

    tags = forms.CharField(
        label=_("Tags"),
        required=False,
        help_text=_("Comma-separated, e.g. retail, pos, priority."),
    )

    class Meta:
        model = Merchant
        fields = list(services.EDITABLE_FIELDS)
        widgets = {"volume_currency": forms.Select(choices=CURRENCY_CHOICES)}

    def __init__(self, *args, owner_choices=None, can_assign: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags or [])
            allowed = {self.instance.status, *Merchant.TRANSITIONS[self.instance.status]}
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
