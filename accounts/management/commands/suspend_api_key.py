from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.services import KeyStateError, api_key_find, api_key_reactivate, api_key_suspend
from audit.services import COMMAND, audit_record


class Command(BaseCommand):
    help = "Suspend an API key (staff), or reactivate it with --undo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the secret (sk-nx-...) or the visible prefix")
        parser.add_argument("--undo", action="store_true", help="reactivate the key")

    def handle(self, *args: Any, key: str, undo: bool, **options: Any) -> None:
        api_key = api_key_find(secret_or_prefix=key.strip())
        if api_key is None:
            raise CommandError("no single key matches that secret or prefix")
        before = api_key.status
        try:
            with transaction.atomic():
                (api_key_reactivate if undo else api_key_suspend)(key=api_key)
                audit_record(
                    actor=COMMAND,
                    action=f"api_key.{'reactivate' if undo else 'suspend'}",
                    target=api_key,
                    customer=api_key.user,
                    before={"status": before},
                    after={"status": api_key.status},
                    reason="suspend_api_key" + (" --undo" if undo else ""),
                )
        except KeyStateError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'Reactivated' if undo else 'Suspended'} {api_key.prefix}…")
