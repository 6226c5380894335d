from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.loader import LoadError, catalogue_load
from providers.services import catalogue_changed


class Command(BaseCommand):
    help = "Create or update providers, upstream keys and models from a YAML file (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")

    def handle(self, *args: Any, path: str, **options: Any) -> None:
        try:
            summary = catalogue_load(path=path)
        except LoadError as exc:
            raise CommandError(f"{path}: {exc}") from None
        catalogue_changed()
        self.stdout.write(f"Loaded {path}: {summary}")
