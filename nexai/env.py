"""Tiny typed readers for settings taken from the environment.

A bad value fails loudly at start-up rather than surfacing as odd behaviour later.
"""

from __future__ import annotations

import os
from datetime import date

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 0 or 1, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_date(name: str) -> date | None:
    """An ISO date (YYYY-MM-DD), or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a date as YYYY-MM-DD, not {raw!r}") from None


def env_together(label: str, names: list[str], *, needs: str = "") -> bool:
    """Several variables that make one integration: all set (True), none set (False),
    or some set, which is an error naming the ones missing. `needs` names a variable
    the integration cannot work without."""
    missing = [name for name in names if not os.environ.get(name, "").strip()]
    if len(missing) == len(names):
        return False
    if missing:
        raise ImproperlyConfigured(f"{label} needs {', '.join(missing)} as well")
    if needs and not os.environ.get(needs, "").strip():
        raise ImproperlyConfigured(f"{label} needs {needs}")
    return True
