import json

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.forms import StyledFormMixin
from core.roles import ROLES
from merchants.models import Document
from onboarding import conditions
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


class StepForm(StyledFormMixin, forms.Form):
    """One step in the workflow editor. The condition is structured JSON."""

    name = forms.CharField(label=_("Step"), max_length=100)
    group = forms.ModelChoiceField(label=_("Decided by"), queryset=Group.objects.none())
    approvals_required = forms.TypedChoiceField(
        label=_("Approvers"),
        coerce=int,
        choices=[(1, _("1")), (2, _("2 (four eyes)")), (3, _("3"))],
    )
    sla_hours = forms.IntegerField(label=_("SLA (hours)"), min_value=1, max_value=24 * 30)
    required_documents = forms.MultipleChoiceField(
        label=_("Required documents"), required=False, choices=Document.Type.choices,
        widget=forms.SelectMultiple(attrs={"size": 3}),
    )  # fmt: skip
    condition = forms.CharField(
        label=_("Condition (JSON, empty = always)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace"}),
        help_text=_(
            'e.g. {"any": [{"field": "merchant.risk_level", "op": "eq", "value": "high"}]}'
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = Group.objects.filter(name__in=ROLES).order_by("name")
        self.fields["condition"].widget.attrs["class"] += " font-monospace"

    def clean_condition(self):
        text = self.cleaned_data["condition"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                _("Not valid JSON: %(error)s") % {"error": exc.msg}
            ) from None
        try:
            conditions.validate(value)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["condition"]) from None
        return value


StepFormSet = forms.formset_factory(StepForm, extra=0, can_delete=True, can_order=True, min_num=1)


def step_initial(step) -> dict:
    return {
        "name": step.name,
        "group": step.group_id,
        "approvals_required": step.approvals_required,
        "sla_hours": step.sla_hours,
        "required_documents": step.required_documents,
        "condition": json.dumps(step.condition) if step.condition else "",
        "ORDER": step.position,
    }


def ordered_steps(formset) -> list[dict]:
    """The formset's kept steps in their chosen order, as service arguments."""
    kept = [f for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
    kept.sort(key=lambda f: f.cleaned_data.get("ORDER") or 10_000)
    return [{k: v for k, v in f.cleaned_data.items() if k not in ("DELETE", "ORDER")} for f in kept]
