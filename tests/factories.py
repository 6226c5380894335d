"""Named personas and small factories, built through the services as real users are."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from accounts.models import User
from accounts.services import CreatedKey, api_key_create, user_get_or_create
from billing.services import credits_grant

_seq = itertools.count(1)


def make_user(*, email: str | None = None, credits: int = 0) -> User:
    user, _ = user_get_or_create(email=email or f"user{next(_seq)}@example.com")
    if credits:
        credits_grant(user=user, amount=credits, reference=f"test-grant:{next(_seq)}:{user.pk}")
    return user


def make_key(user: User, **limits: object) -> CreatedKey:
    return api_key_create(user=user, name=str(limits.pop("name", "test key")), **limits)  # type: ignore[arg-type]


@dataclass
class Personas:
    funded: User  # a paying customer with US$100 of credits
    funded_key: CreatedKey
    broke: User  # a customer with nothing left
    broke_key: CreatedKey
    staff: User


def make_personas() -> Personas:
    funded = make_user(email="funded@example.com", credits=100_000_000)
    broke = make_user(email="broke@example.com")
    staff = User.objects.create_superuser(email="staff@example.com", password="staff-pass-123")
    return Personas(
        funded=funded,
        funded_key=make_key(funded, name="funded key"),
        broke=broke,
        broke_key=make_key(broke, name="broke key"),
        staff=staff,
    )
