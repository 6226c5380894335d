from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, User
from gateway.models import StoredResponse, UsageRecord
from tests.factories import Personas

_seq = itertools.count(1)


def make_usage(
    user: User,
    key: ApiKey | None = None,
    *,
    model: str = "gpt-4o",
    status: int = 200,
    charge: int = 1234,
    ago: timedelta = timedelta(0),
    **fields: object,
) -> UsageRecord:
    """A metered request as the gateway's writer records it. Written directly: the
    dashboard only reads these rows, and the writer has no per-row service."""
    n = next(_seq)
    created: datetime = timezone.now() - ago
    return UsageRecord.objects.create(
        request_id=f"req_test_{n:06d}",
        user=user,
        api_key=key,
        endpoint="/v1/chat/completions",
        model=model,
        provider="openai",
        status=status,
        charge=charge,
        input_tokens=fields.pop("input_tokens", 100),
        output_tokens=fields.pop("output_tokens", 20),
        latency_ms=fields.pop("latency_ms", 420),
        created_at=created,
        **fields,
    )


def make_stored_response(user: User, *, model: str = "gpt-4o") -> StoredResponse:
    n = next(_seq)
    return StoredResponse.objects.create(
        response_id=f"resp_test_{n:06d}",
        user=user,
        model=model,
        body={"id": f"resp_test_{n:06d}", "output_text": "secret words"},
        messages=[{"role": "user", "content": "secret question"}],
    )


@pytest.fixture
def funded_client(personas: Personas) -> Client:
    """The funded customer, verified and logged in to the dashboard."""
    client = Client()
    personas.funded.email_verified = True
    personas.funded.save()
    client.force_login(personas.funded)
    return client
