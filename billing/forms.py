"""Customer forms of billing: amounts typed in US$ or in đồng, read exactly."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.exchange import format_vnd, parse_vnd
from billing.models import BalanceAlert
from billing.money import CREDITS_PER_CENT, credits_to_usd, usd_to_credits
from billing.payos_topups import TOPUP_MAX_VND, TOPUP_MIN_VND, TOPUP_PRESETS_VND
from billing.stripe_topups import TOPUP_MAX_CENTS, TOPUP_MIN_CENTS


class RedeemForm(forms.Form):
    code = forms.CharField(
        label=_("Redemption code"),
        max_length=40,
        widget=forms.TextInput(
            attrs={
                "placeholder": "NX-XXXX-XXXX-XXXX-XXXX",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )


def _usd_field(label: str, help_text: str = "", required: bool = False) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=required, max_length=20)


class AlertForm(forms.Form):
    threshold_usd = _usd_field(
        _("Alert me when my balance falls below (US$)"),
        _("One email each time the balance crosses it. Leave empty to switch alerts off."),
    )
    email_enabled = forms.BooleanField(label=_("Send me an email"), required=False)
    auto_topup = forms.BooleanField(
        label=_("Top up automatically with my saved card"), required=False
    )
    topup_usd = _usd_field(_("Top-up amount (US$)"), _("Between $5 and $1,000."))
    min_interval_minutes = forms.IntegerField(
        label=_("At most once every (minutes)"), min_value=5, max_value=7 * 24 * 60
    )

    def __init__(self, *args: Any, alert: BalanceAlert, **kwargs: Any) -> None:
        initial = {
            "threshold_usd": credits_to_usd(alert.threshold)[1:] if alert.threshold else "",
            "email_enabled": alert.email_enabled,
            "auto_topup": alert.auto_topup,
            "topup_usd": f"{alert.topup_cents // 100}.{alert.topup_cents % 100:02d}",
            "min_interval_minutes": alert.min_interval_minutes,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.alert = alert

    def clean_threshold_usd(self) -> int | None:
        text = self.cleaned_data["threshold_usd"].strip()
        if not text:
            return None
        try:
            credits = usd_to_credits(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        if credits <= 0:
            raise forms.ValidationError(_("Enter an amount above $0."))
        return credits

    def clean_topup_usd(self) -> int:
        try:
            credits = usd_to_credits(self.cleaned_data["topup_usd"] or "0")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        cents, rest = divmod(credits, CREDITS_PER_CENT)
        if rest or not TOPUP_MIN_CENTS <= cents <= TOPUP_MAX_CENTS:
            raise forms.ValidationError(_("Enter whole cents between $5 and $1,000."))
        return cents

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("auto_topup") and data.get("threshold_usd") is None:
            self.add_error("threshold_usd", _("Auto top-up needs a threshold."))
        return data

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "threshold": data["threshold_usd"],
            "email_enabled": data["email_enabled"],
            "auto_topup": data["auto_topup"],
            "topup_cents": data["topup_usd"],
            "min_interval_minutes": data["min_interval_minutes"],
        }


class VietqrForm(forms.Form):
    """An amount in đồng for a payOS payment link: a preset, or one typed as a
    Vietnamese writes it ("150.000") or not ("150000")."""

    preset = forms.ChoiceField(required=False, widget=forms.RadioSelect)
    custom_vnd = forms.CharField(label=_("Amount (₫)"), required=False, max_length=20)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["preset"].choices = [
            *((str(v), format_vnd(v)) for v in TOPUP_PRESETS_VND),
            ("custom", _("Other")),
        ]
        self.fields["preset"].initial = str(TOPUP_PRESETS_VND[1])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        preset = data.get("preset") or "custom"
        limits = {"low": format_vnd(TOPUP_MIN_VND), "high": format_vnd(TOPUP_MAX_VND)}
        try:
            amount = parse_vnd(data.get("custom_vnd") or "") if preset == "custom" else int(preset)
        except ValueError:
            self.add_error("custom_vnd", _("Enter an amount in đồng, e.g. 150.000."))
            return data
        if not TOPUP_MIN_VND <= amount <= TOPUP_MAX_VND:
            self.add_error("custom_vnd", _("Top-ups are between %(low)s and %(high)s.") % limits)
        else:
            data["amount_vnd"] = amount
        return data
