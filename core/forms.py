from django import forms
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
