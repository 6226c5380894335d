"""Writes to the catalogue that other code relies on being told about."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

CATALOGUE_VERSION_KEY = "catalogue:version"


def catalogue_changed() -> None:
    """Tell every process that the catalogue changed: their snapshots reload."""
    cache.set(CATALOGUE_VERSION_KEY, timezone.now().timestamp(), None)
    from providers import catalogue

    catalogue.reset()
