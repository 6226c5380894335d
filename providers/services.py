"""Writes to the catalogue that other code relies on being told about."""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction

CATALOGUE_VERSION_KEY = "catalogue:version"


def catalogue_changed() -> None:
    """Tell every process that the catalogue changed: their snapshots reload.

    Announced once the change is committed (the admin saves inside a transaction):
    announced earlier, another process could rebuild from the old rows under the new
    version and keep that snapshot until the next change."""

    def announce() -> None:
        from providers import catalogue

        cache.set(CATALOGUE_VERSION_KEY, uuid.uuid4().hex, None)
        catalogue.reset()

    transaction.on_commit(announce)
