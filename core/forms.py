from django import forms
from django.core import signing
from django.utils.translation import gettext_lazy as _


class StyledFormMixin:
    """Bootstrap classes on every widget; ``compact`` for filter bars."""

    compact = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            is_select = isinstance(field.widget, forms.Select)
            css = "form-select" if is_select else "form-control"
            if self.compact:
                css += " form-select-sm" if is_select else " form-control-sm"
            field.widget.attrs["class"] = css


class SignInForm(StyledFormMixin, forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class CodeForm(StyledFormMixin, forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "text"}
        ),
        help_text=_("The 6-digit code from your authenticator app, or one of your backup codes."),
    )


class EnrolForm(StyledFormMixin, forms.Form):
    code = forms.RegexField(
        label=_("Code from your app"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("Enter the 6 digits your app shows.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "inputmode": "numeric"}
        ),
    )


class SignedUploadMixin(forms.Form):
    """An upload checked in a dry run, then confirmed without uploading again.

    The dry run's page carries the file's text back in ``payload``, signed and
    compressed, so that the confirmation writes exactly what was checked.
    Subclasses set ``SALT`` (one per kind of import) and ``MAX_BYTES``.
    """

    SALT = ""
    MAX_BYTES = 5 * 1024 * 1024

    file = forms.FileField(label=_("CSV file (UTF-8)"), required=False)
    only_valid = forms.BooleanField(
        label=_("Import only the valid rows (skip the ones with errors)"), required=False
    )
    payload = forms.CharField(required=False, widget=forms.HiddenInput)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["only_valid"].widget.attrs["class"] = "form-check-input"

    def clean_payload(self) -> str:
        value = self.cleaned_data.get("payload") or ""
        if not value:
            return ""
        try:
            return signing.loads(value, salt=self.SALT, max_age=3600)
        except signing.BadSignature:
            raise forms.ValidationError(
                _("The confirmation was damaged or is over an hour old; upload the file again.")
            ) from None

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if not data.get("payload") and not upload:
            self.add_error("file", _("Choose a CSV file."))
        if upload and upload.size > self.MAX_BYTES:
            self.add_error(
                "file",
                _("The file is larger than %(mb)d MB; split it into smaller files.")
                % {"mb": self.MAX_BYTES // (1024 * 1024)},
            )
        return data

    @classmethod
    def encode(cls, text: str) -> str:
        return signing.dumps(text, salt=cls.SALT, compress=True)
