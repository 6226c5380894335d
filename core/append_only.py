"""Append-only tables (the ledger, the audit trail): a row is written once, never
edited or deleted, one at a time or in bulk. A model declares the error it raises and
what it tells the caller instead."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models


class AppendOnlyError(Exception):
    """A row of an append-only table was to be edited or deleted."""


class AppendOnlyQuerySet(models.QuerySet):
    # Bulk edits are refused as loudly as single ones.
    def update(self, **kwargs: object) -> int:
        raise self.model.refusal(self.model.edit_refusal)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise self.model.refusal(self.model.delete_refusal)


class AppendOnly(models.Model):
    refusal: ClassVar[type[AppendOnlyError]] = AppendOnlyError
    edit_refusal: ClassVar[str] = "This row cannot be edited."
    delete_refusal: ClassVar[str] = "This row cannot be deleted."

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise self.refusal(self.edit_refusal)
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise self.refusal(self.delete_refusal)
