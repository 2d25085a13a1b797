from django import forms
from django.utils.translation import gettext_lazy as _

from core.forms import StyledFormMixin
from onboarding.models import ComplianceCheck, StepDecision


class DecisionForm(StyledFormMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Decision"), choices=StepDecision.Kind.choices)
    comment = forms.CharField(
        label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    items = forms.CharField(
        label=_("Missing items (one per line)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For an information request."),
    )
    send_back_to = forms.ModelChoiceField(label=_("Send back to"), queryset=None, required=False)

    def __init__(self, *args, earlier_steps=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["send_back_to"].queryset = earlier_steps

    def clean_items(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["items"].splitlines() if line.strip()]


class ResolveForm(StyledFormMixin, forms.Form):
    status = forms.ChoiceField(
        choices=[
            (ComplianceCheck.Status.CLEARED, _("Clear (false positive)")),
            (ComplianceCheck.Status.CONFIRMED, _("Confirm")),
        ]
    )
    reason = forms.CharField(label=_("Reason"), max_length=1000)
