"""The breaker's state is shared by every server process through Redis: what one
process found dead, the others skip. Run by CI's second pass (PostgreSQL and Redis)."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import add_model, add_provider
from tests.gateway.test_concurrency import two_gateways  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

KEY_A, KEY_B = "sk-fault-proc-a-0123456789", "sk-fault-proc-b-0123456789"


def _ask(base_url: str, secret: str) -> int:
    response = httpx.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {secret}"},
        timeout=30,
    )
    return response.status_code


def test_a_second_process_does_not_send_to_a_pair_the_first_found_dead(
    two_gateways: list[str],  # noqa: F811
) -> None:
    with FakeOpenAI(expected_key={KEY_A, KEY_B}) as fake:
        provider = add_provider("pool", fake.base_url + "/v1", KEY_A, KEY_B)
        provider.keys.filter(secret=KEY_A).update(weight=1_000_000)
        add_model("gpt-4o", (provider, "gpt-4o"))
        secret = make_key(make_user(credits=100_000_000)).secret
        fake.fail_next(500, key=KEY_A, model="gpt-4o", times=10)
        first, second = two_gateways
        assert _ask(first, secret) == 200  # key A failed, key B answered
        assert [_ask(second, secret) for _ in range(3)] == [200] * 3
        used = [r.headers["authorization"][7:] for r in fake.requests]
        # The second process never tried key A for gpt-4o: it read the first's finding.
        assert used == [KEY_A, KEY_B, KEY_B, KEY_B, KEY_B]
