"""Forms of the reconciliation pages: the report upload and the resolution note."""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from core.forms import StyledFormMixin
from settlements.services import reconciliation


class ReconciliationUploadForm(StyledFormMixin, forms.Form):
    source = forms.ModelChoiceField(label=_("Gateway"), queryset=None)
    file = forms.FileField(label=_("Settlement report (CSV, UTF-8)"))

    def __init__(self, *args, sources: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = sources
        self.fields["file"].widget.attrs["accept"] = ".csv,text/csv"

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > reconciliation.MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 10 MB; split it into smaller files.")
            )
        return upload


class ResolveForm(forms.Form):
    # Not required here: the service says what is missing, for every door alike.
    note = forms.CharField(
        label=_("Resolution note"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(
            attrs={
                "class": "form-control form-control-sm",
                "placeholder": _("How was this settled?"),
            }
        ),
    )
