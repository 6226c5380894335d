"""The mailbox an email address reaches, for rules that are per person rather than
per spelling (the signup gift)."""

from __future__ import annotations

# Providers that deliver mail for "a.b+c@" to "ab@": one mailbox, many spellings.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_email(email: str) -> str:
    """Lower case, without a +tag, and for Gmail without dots and with one domain."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS:
        local, domain = local.replace(".", ""), _DOTLESS[domain]
    return f"{local}@{domain}"
