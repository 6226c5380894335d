from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from accounts.services import api_key_create, expiry_in_days, user_get_or_create
from audit.services import COMMAND, audit_record
from billing.services import credits_grant
from providers.selectors import unknown_model_ids


class Command(BaseCommand):
    help = (
        "Create an API key for EMAIL (creating the user if needed, without the signup gift) "
        "and optionally grant credits. The secret is printed alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--credits", default="0")
        parser.add_argument("--name", default="")
        parser.add_argument("--rpm")
        parser.add_argument("--spend-limit")
        parser.add_argument("--models", default="")
        parser.add_argument("--expires-in-days")

    def _number(self, option: str, raw: str | None, *, minimum: int) -> int | None:
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise CommandError(f"{option} must be a whole number, not {raw!r}") from None
        if value < minimum:
            raise CommandError(f"{option} must be at least {minimum}, not {value}")
        return value

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--email: {email!r} is not a valid email address") from None
        credits = self._number("--credits", options["credits"], minimum=0) or 0
        rpm = self._number("--rpm", options["rpm"], minimum=1)
        spend_limit = self._number("--spend-limit", options["spend_limit"], minimum=0)
        days = self._number("--expires-in-days", options["expires_in_days"], minimum=1)
        models = [m.strip() for m in options["models"].split(",") if m.strip()]
        unknown = unknown_model_ids(models)
        if unknown:
            raise CommandError(f"--models: unknown model id {', '.join(unknown)}")

        with transaction.atomic():
            user, created = user_get_or_create(email=email)
            if credits:
                entry = credits_grant(
                    user=user,
                    amount=credits,
                    reference=f"cli:{uuid.uuid4()}",
                    description="Granted by create_api_key",
                )
                audit_record(
                    actor=COMMAND, action="credits.grant", target=entry, customer=user,
                    after={"amount": credits},
                )  # fmt: skip
            new = api_key_create(
                user=user,
                name=options["name"],
                rpm=rpm,
                spend_limit=spend_limit,
                allowed_models=models,
                expires_at=expiry_in_days(days),
            )
        self.stdout.write(
            f"{'Created' if created else 'Found'} user {user.email}; "
            f"key {new.key.prefix}… ({new.key.name or 'unnamed'}); granted {credits} credits"
        )
        self.stdout.write(new.secret)
