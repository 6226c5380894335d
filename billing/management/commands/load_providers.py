"""`load_providers PATH`: the providers file into the catalogue, with an audit entry.

It lives in billing, not providers, because it writes the audit trail and providers
imports none of our apps; billing may use providers (docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import COMMAND, audit_record
from providers.loader import LoadError, LoadSummary, catalogue_load
from providers.services import catalogue_changed


class Command(BaseCommand):
    help = (
        "Create or update providers, upstream keys, models and routes from a YAML file "
        "(idempotent). Nothing is disabled without --prune."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="disable providers, keys and models the file created and no longer lists",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would change, change nothing"
        )
        parser.add_argument(
            "--only-with-keys",
            action="store_true",
            help="skip providers whose env: keys are unset, and the routes and models "
            "left without a provider",
        )

    def handle(
        self,
        *args: Any,
        path: str,
        prune: bool,
        dry_run: bool,
        only_with_keys: bool,
        **options: Any,
    ) -> None:
        def audit(summary: LoadSummary) -> None:
            if summary.changes:
                audit_record(
                    actor=COMMAND,
                    action="catalogue.load",
                    target_type="providers file",
                    after=summary.audit(),
                    reason=f"load_providers {path}" + (" --prune" if prune else ""),
                )

        try:
            summary = catalogue_load(
                path=path,
                prune=prune,
                dry_run=dry_run,
                only_with_keys=only_with_keys,
                on_applied=audit,
            )
        except LoadError as exc:
            raise CommandError(f"{path}: {exc}") from None
        if not dry_run:
            catalogue_changed()
        for line in summary.report():
            (self.stderr if line.startswith("WARNING") else self.stdout).write(line)
        prefix = "Dry run, nothing changed" if dry_run else "Loaded"
        self.stdout.write(f"{prefix} {path}: {summary}")
