from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.services import api_key_find, api_key_revoke
from audit.services import COMMAND, audit_record


class Command(BaseCommand):
    help = "Revoke an API key, given by its secret or its visible prefix. Revocation is final."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the secret (sk-nx-...) or the visible prefix")

    def handle(self, *args: Any, key: str, **options: Any) -> None:
        api_key = api_key_find(secret_or_prefix=key.strip())
        if api_key is None:
            raise CommandError("no single key matches that secret or prefix")
        before = api_key.status
        with transaction.atomic():
            api_key_revoke(key=api_key)
            audit_record(
                actor=COMMAND,
                action="api_key.revoke",
                target=api_key,
                customer=api_key.user,
                before={"status": before},
                after={"status": api_key.status},
                reason="revoke_api_key",
            )
        self.stdout.write(f"Revoked {api_key.prefix}… of {api_key.user.email}")
