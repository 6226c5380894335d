"""The gateway's error codes (DESIGN.md) in words a customer can act on. The code is
still shown beside them, small, for support tickets and scripts."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ERROR_TEXTS: dict[str, Promise] = {
    "invalid_request": _("The request was not valid: a field is missing or wrong."),
    "invalid_api_key": _("The API key was missing, unknown or mistyped."),
    "insufficient_quota": _("Your balance could not cover this request. Add credits."),
    "key_spend_limit_reached": _("This key reached its spend limit. Raise or remove it."),
    "key_revoked": _("This key is revoked."),
    "key_suspended": _("This key was suspended by our team. Contact support."),
    "key_expired": _("This key has expired."),
    "model_not_allowed": _("This key is not allowed to use this model."),
    "model_not_found": _("No model has this id. Check the model catalogue."),
    "request_too_large": _("The request body was too large."),
    "rate_limit_exceeded": _(
        "Too many requests in a minute for your plan or key. Slow down, or move to the paid plan."
    ),
    "internal_error": _("Something went wrong on our side. You were not charged for it."),
    "upstream_error": _("The model's provider failed before answering; every route was tried."),
    "no_active_provider_keys": _(
        "This model is temporarily unavailable: no provider can serve it right now."
    ),
    "upstream_timeout": _("The model's provider took too long to answer."),
    "client_disconnected": _("Your client closed the connection before the answer ended."),
}

STATUS_TEXTS: dict[int, Promise] = {
    400: _("The request was not valid."),
    401: _("The API key was not accepted."),
    402: _("Not enough credits."),
    403: _("This key may not make this request."),
    404: _("Not found."),
    413: _("The request was too large."),
    429: _("Rate limit reached."),
    500: _("Something went wrong on our side."),
    502: _("The model's provider failed."),
    503: _("Temporarily unavailable."),
    504: _("The model's provider timed out."),
}


def error_text(*, code: str, status: int) -> str:
    """Readable words for a failed request ("" for a success)."""
    if 200 <= status < 300 and not code:
        return ""
    text = ERROR_TEXTS.get(code) or STATUS_TEXTS.get(status) or _("The request failed.")
    return str(text)


def error_summary(*, code: str, status: int) -> str:
    """A few words for a table cell; error_text has the whole sentence."""
    if 200 <= status < 300 and not code:
        return ""
    if code == "no_active_provider_keys":
        return str(_("Model unavailable."))
    return str(STATUS_TEXTS.get(status) or _("The request failed."))
