from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiKey, User
from billing.money import CREDITS_PER_USD
from billing.stripe_topups import TOPUP_MAX_CENTS, TOPUP_MIN_CENTS, TOPUP_PRESETS_CENTS
from dashboard.abuse import is_disposable
from dashboard.selectors import public_models
from dashboard.services import key_name_taken


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not only digits, not a common password."),
    )

    def clean_email(self) -> str:
        # Whether the address has an account is never said here (no enumeration):
        # the owner of a taken address gets an email instead.
        email = self.cleaned_data["email"].strip().lower()
        if is_disposable(email):
            raise forms.ValidationError(
                _("Please use a permanent email address: throwaway inboxes cannot sign up.")
            )
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("password") and data.get("email"):
            try:
                password_validation.validate_password(data["password"], User(email=data["email"]))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


def _dollars_to_credits(value: Decimal) -> int:
    # Decimal, not float: "12.34" is exactly 12,340,000 credits.
    return int(value * CREDITS_PER_USD)


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


class KeyForm(forms.Form):
    """A key's name and limits; blank limits mean "no limit of its own"."""

    name = forms.CharField(label=_("Name"), max_length=100)
    scope = forms.ChoiceField(
        label=_("Access"),
        choices=ApiKey.Scope.choices,
        initial=ApiKey.Scope.INFERENCE,
        required=False,
        widget=forms.RadioSelect,
        help_text=_(
            "Most keys only call models. A management key can also create and revoke "
            "keys through /api/: keep it for your own scripts."
        ),
    )
    rpm = forms.IntegerField(
        label=_("Requests per minute"),
        required=False,
        min_value=1,
        max_value=100_000,
        help_text=_("Blank: your plan's limit."),
    )
    concurrency = forms.IntegerField(
        label=_("Requests in flight at once"),
        required=False,
        min_value=1,
        max_value=10_000,
        help_text=_("Blank: your plan's limit."),
    )
    spend_limit_usd = forms.DecimalField(
        label=_("Spend limit (US$)"),
        required=False,
        min_value=Decimal("0.01"),
        max_value=Decimal("1000000"),
        decimal_places=6,
        help_text=_("Lifetime cap for this key. Blank: no cap."),
    )
    allowed_models = forms.MultipleChoiceField(
        label=_("Allowed models"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every model."),
    )
    expires_on = forms.DateField(
        label=_("Valid until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Last day the key works (UTC). Blank: never expires."),
    )

    def __init__(
        self, *args: Any, key: ApiKey | None = None, user: User | None = None, **kwargs: Any
    ) -> None:
        self.key, self.user = key, user
        if key is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": key.name,
                "rpm": key.rpm,
                "concurrency": key.concurrency,
                "spend_limit_usd": (
                    Decimal(key.spend_limit) / CREDITS_PER_USD
                    if key.spend_limit is not None
                    else None
                ),
                "allowed_models": key.allowed_models,
                "expires_on": (
                    (key.expires_at - timedelta(seconds=1)).date() if key.expires_at else None
                ),
            }
        super().__init__(*args, **kwargs)
        ids = [m.public_id for m in public_models()]
        # A key may still name a model that was disabled since; keep it visible.
        ids += [m for m in (key.allowed_models if key else []) if m not in ids]
        self.fields["allowed_models"].choices = [(i, i) for i in ids]
        if key is not None:
            # A key's scope is fixed when it is made; unnamed keys (from scripts) may stay so.
            del self.fields["scope"]
            self.fields["name"].required = bool(key.name)

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name", "").strip()
        owner = self.user or (self.key.user if self.key else None)
        if (
            name
            and owner
            and key_name_taken(user=owner, name=name, exclude_id=self.key.pk if self.key else None)
        ):
            raise forms.ValidationError(
                _("You already have a key named “%(name)s”. Pick another name.") % {"name": name}
            )
        return name

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data.get("expires_on")
        if day and _end_of_day(day) <= timezone.now():
            raise forms.ValidationError(_("Pick a day that has not ended yet."))
        return day

    def limits(self) -> dict[str, Any]:
        """The cleaned values as api_key_create / api_key_update arguments."""
        data = self.cleaned_data
        spend = data.get("spend_limit_usd")
        expires = data.get("expires_on")
        return {
            "name": data.get("name", "").strip(),
            "rpm": data.get("rpm"),
            "concurrency": data.get("concurrency"),
            "spend_limit": _dollars_to_credits(spend) if spend is not None else None,
            "allowed_models": list(data.get("allowed_models") or []),
            "expires_at": _end_of_day(expires) if expires else None,
        }

    def chosen_scope(self) -> str:
        return self.cleaned_data.get("scope") or ApiKey.Scope.INFERENCE


class TopupForm(forms.Form):
    PRESETS = [(str(c), f"${c // 100}") for c in TOPUP_PRESETS_CENTS]

    preset = forms.ChoiceField(
        choices=[*PRESETS, ("custom", _("Other"))],
        initial=str(TOPUP_PRESETS_CENTS[1]),
        widget=forms.RadioSelect,
        required=False,
    )
    custom_usd = forms.DecimalField(
        label=_("Amount (US$)"),
        required=False,
        decimal_places=2,
        min_value=Decimal(TOPUP_MIN_CENTS) / 100,
        max_value=Decimal(TOPUP_MAX_CENTS) / 100,
        widget=forms.NumberInput(attrs={"step": "0.01", "placeholder": "20.00"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        preset = data.get("preset") or "custom"
        if preset != "custom":
            data["amount_cents"] = int(preset)
        elif data.get("custom_usd") is not None:
            data["amount_cents"] = int(data["custom_usd"] * 100)
        elif "custom_usd" not in self.errors:
            self.add_error("custom_usd", _("Enter an amount between $5 and $1,000."))
        return data


class UsageFilterForm(forms.Form):
    STATUS_CHOICES = [
        ("", _("Any status")),
        ("ok", _("Successful (2xx)")),
        ("error", _("Failed")),
        ("400", "400"),
        ("401", "401"),
        ("402", "402"),
        ("403", "403"),
        ("404", "404"),
        ("429", "429"),
        ("500", "500"),
        ("502", "502"),
        ("503", "503"),
        ("504", "504"),
    ]

    key = forms.ModelChoiceField(
        label=_("Key"), queryset=ApiKey.objects.none(), required=False, empty_label=_("All keys")
    )
    model = forms.ChoiceField(label=_("Model"), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=STATUS_CHOICES, required=False)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, user: User, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the customer's own keys are valid choices: another customer's key id is
        # a form error, never a filter.
        self.fields["key"].queryset = ApiKey.objects.owned_by(user)
        self.fields["key"].label_from_instance = lambda k: f"{k.name or k.prefix} ({k.prefix}…)"
        self.fields["model"].choices = [("", _("All models")), *((m, m) for m in models)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            # Neither date filters: the customer sees the mistake, not a silent empty list.
            data.pop("date_from")
            self.add_error("date_to", _("“To” must be on or after “From”."))
        return data

    def filters(self) -> dict[str, Any]:
        # Valid fields still filter when another one is wrong.
        self.is_valid()
        data = self.cleaned_data
        return {
            "api_key": data.get("key"),
            "model": data.get("model", ""),
            "status": data.get("status", ""),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
