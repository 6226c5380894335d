from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiKey
from accounts.scopes import api_key_scope_set
from accounts.services import api_key_create, expiry_in_days, user_get_or_create
from audit.services import COMMAND, audit_record
from billing.services import credits_grant
from providers.selectors import unknown_model_ids


def set_password_link(user: object) -> str:
    """The dashboard's own password-reset link for this user, on SITE_URL: opening it
    lets them choose a password (Django's token, single use, PASSWORD_RESET_TIMEOUT)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))  # type: ignore[attr-defined]
    token = default_token_generator.make_token(user)  # type: ignore[arg-type]
    path = reverse("password_reset_confirm", args=[uid, token])
    return f"{settings.SITE_URL}{path}"


class Command(BaseCommand):
    help = (
        "Create an API key for EMAIL (creating the user if needed, without the signup gift) "
        "and optionally grant credits. The secret is printed alone on the last line. A user "
        "without a password cannot log in to the dashboard: give --password, or open the "
        "set-password link the command prints."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--credits", default="0")
        parser.add_argument("--name", default="")
        parser.add_argument("--rpm")
        parser.add_argument(
            "--concurrency", help="requests the key may have in flight at once (its own cap)"
        )
        parser.add_argument("--spend-limit")
        parser.add_argument("--models", default="")
        parser.add_argument("--expires-in-days")
        parser.add_argument(
            "--password",
            help="set this dashboard password for the user (new or existing); "
            "without it a user with no password gets a set-password link",
        )
        parser.add_argument(
            "--management",
            action="store_true",
            help="the key may also manage keys through /api/ (not only call /v1)",
        )

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
        concurrency = self._number("--concurrency", options["concurrency"], minimum=1)
        spend_limit = self._number("--spend-limit", options["spend_limit"], minimum=0)
        days = self._number("--expires-in-days", options["expires_in_days"], minimum=1)
        models = [m.strip() for m in options["models"].split(",") if m.strip()]
        unknown = unknown_model_ids(models)
        if unknown:
            raise CommandError(f"--models: unknown model id {', '.join(unknown)}")

        password = options["password"]
        if password is not None:
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError(f"--password: {' '.join(exc.messages)}") from None

        with transaction.atomic():
            user, created = user_get_or_create(email=email)
            if password is not None:
                user.set_password(password)
                user.save(update_fields=["password"])
            if (created or password is not None) and not user.email_verified:
                # The operator vouches for the address: no verification mail to wait for.
                user.email_verified = True
                user.save(update_fields=["email_verified"])
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
                concurrency=concurrency,
                spend_limit=spend_limit,
                allowed_models=models,
                expires_at=expiry_in_days(days),
            )
            if options["management"]:
                api_key_scope_set(key=new.key, scope=ApiKey.Scope.MANAGEMENT)
        self.stdout.write(
            f"{'Created' if created else 'Found'} user {user.email}; "
            f"key {new.key.prefix}… ({new.key.name or 'unnamed'}); granted {credits} credits"
        )
        if password is not None:
            self.stdout.write(f"Dashboard login: {user.email} with the password given.")
        elif not user.has_usable_password():
            self.stdout.write(
                "This user has no password and cannot log in to the dashboard yet. "
                f"Set one here (the link works for {settings.PASSWORD_RESET_TIMEOUT // 86400} "
                f"days, once): {set_password_link(user)}"
            )
        self.stdout.write(new.secret)
