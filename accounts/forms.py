"""Django's log-in and password-reset forms with attempt limits (accounts/throttle.py).
Neither says whether an address has an account."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext as _

from accounts import throttle


def lockout_error(seconds: int) -> forms.ValidationError:
    return forms.ValidationError(
        _("Too many attempts. For your security, try again in %(minutes)s minutes.")
        % {"minutes": throttle.minutes(seconds)},
        code="locked",
    )


class ThrottledAuthenticationForm(AuthenticationForm):
    """Counts failed logins per client address and per submitted email (whether or
    not it has an account); past either limit every attempt is refused until the
    window ends, the right password included."""

    locked = False  # the template says why, instead of "wrong password"

    def clean(self) -> dict[str, Any]:
        email = (self.data.get("username") or "").strip().lower()
        ip = throttle.client_ip(self.request) if self.request else "unknown"
        wait = max(throttle.locked_for("login-ip", ip), throttle.locked_for("login-account", email))
        if wait:
            self.locked = True
            raise lockout_error(wait)
        try:
            data = super().clean()
        except forms.ValidationError:
            throttle.attempt_record("login-ip", ip)
            throttle.attempt_record("login-account", email)
            raise
        throttle.attempts_clear("login-account", email)
        return data


class ThrottledPasswordResetForm(PasswordResetForm):
    """A limit per client address (said plainly: it reveals nothing about accounts) and
    a quiet one per address, so nobody can flood a mailbox with reset links."""

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        ip = throttle.client_ip(self.request) if self.request else "unknown"
        wait = throttle.locked_for("reset-ip", ip)
        if wait:
            raise lockout_error(wait)
        throttle.attempt_record("reset-ip", ip)
        return data

    def save(self, *args: Any, **kwargs: Any) -> None:
        email = self.cleaned_data["email"]
        if throttle.locked_for("reset-account", email):
            return  # the same "check your inbox" page, no new mail
        throttle.attempt_record("reset-account", email)
        super().save(*args, **kwargs)
