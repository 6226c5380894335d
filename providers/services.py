"""Writes to the catalogue that other code relies on being told about."""

from __future__ import annotations

from django.db import transaction

from providers import catalogue


def catalogue_changed() -> None:
    """Tell every process that the catalogue changed: their snapshots reload.

    Announced once the change is committed (the admin saves inside a transaction):
    announced earlier, another process could rebuild from the old rows under the new
    version and keep that snapshot until the next change."""
    transaction.on_commit(catalogue.announce_change)
