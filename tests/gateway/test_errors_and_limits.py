"""Every refusal the gateway can give, in the OpenAI error shape, and what it leaves
behind: nothing charged unless output was produced, and fallback charging once."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest
import zstandard

from accounts.services import api_key_revoke, api_key_suspend
from billing.models import LedgerEntry
from gateway import writer
from gateway.models import UsageRecord
from gateway.validation import MAX_JSON_BODY
from providers.models import AiModel
from providers.services import catalogue_changed
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import (
    UPSTREAM_KEY,
    Customer,
    add_model,
    add_provider,
    customer_for,
    settled,
)
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]


def post(
    customer: Customer | None, gateway: AsgiServer, body: dict | None = None, **headers: str
) -> httpx.Response:
    if customer is not None:
        headers.setdefault("authorization", f"Bearer {customer.key.secret}")
    return httpx.post(
        f"{gateway.base_url}/v1/chat/completions",
        json=body or {"model": "gpt-4o", "messages": HELLO, "max_tokens": 50},
        headers=headers,
        timeout=20,
    )


def assert_error(response: httpx.Response, status: int, type_: str, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (type_, code)
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"].startswith("req_")
    return error


def test_401_without_a_key_or_with_an_unknown_one(
    gateway: AsgiServer, openai_catalogue: AiModel
) -> None:
    assert_error(post(None, gateway), 401, "authentication_error", "invalid_api_key")
    response = post(None, gateway, authorization="Bearer sk-nx-" + "x" * 43)
    assert_error(response, 401, "authentication_error", "invalid_api_key")


def test_the_key_is_accepted_from_any_of_the_three_headers(
    customer: Customer, gateway: AsgiServer
) -> None:
    for header in ("x-api-key", "api-key"):
        assert post(None, gateway, **{header: customer.key.secret}).status_code == 200


def test_402_when_the_balance_cannot_cover_the_request(
    gateway: AsgiServer, openai_catalogue: AiModel, fake_openai: FakeOpenAI
) -> None:
    broke = customer_for(gateway, credits=0)
    error = assert_error(post(broke, gateway), 402, "insufficient_quota", "insufficient_quota")
    assert "Your balance ($0.00, 0 credits available)" in error["message"]
    assert fake_openai.requests == []


def test_402_when_the_key_reached_its_spend_limit(
    gateway: AsgiServer, openai_catalogue: AiModel, fake_openai: FakeOpenAI
) -> None:
    limited = customer_for(gateway, spend_limit=1_000)
    fake_openai.set_reply(text="ok", prompt_tokens=10, completion_tokens=100)  # 1,025 credits
    assert (
        post(limited, gateway, {"model": "gpt-4o", "messages": HELLO, "max_tokens": 10}).status_code
        == 200
    )
    writer.flush()
    response = post(limited, gateway, {"model": "gpt-4o", "messages": HELLO, "max_tokens": 10})
    assert_error(response, 402, "insufficient_quota", "key_spend_limit_reached")


def test_403_for_revoked_suspended_and_not_allowed(
    gateway: AsgiServer, openai_catalogue: AiModel, django_capture_on_commit_callbacks
) -> None:
    revoked, suspended = customer_for(gateway), customer_for(gateway)
    assert post(revoked, gateway).status_code == 200  # the key is now cached everywhere
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(key=revoked.key.key)
        api_key_suspend(key=suspended.key.key)
    assert_error(post(revoked, gateway), 403, "permission_error", "key_revoked")
    assert_error(post(suspended, gateway), 403, "permission_error", "key_suspended")
    narrow = customer_for(gateway, allowed_models=["text-embedding-3-small"])
    assert_error(post(narrow, gateway), 403, "permission_error", "model_not_allowed")
    assert [m["id"] for m in httpx.get(
        f"{gateway.base_url}/v1/models", headers={"authorization": f"Bearer {narrow.key.secret}"}
    ).json()["data"]] == ["text-embedding-3-small"]  # fmt: skip


def test_403_for_every_key_of_a_deactivated_user_until_reactivated(
    gateway: AsgiServer, openai_catalogue: AiModel, django_capture_on_commit_callbacks
) -> None:
    customer = customer_for(gateway)
    assert post(customer, gateway).status_code == 200  # the key is now cached everywhere
    user = customer.user
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()  # from the admin or a shell
    error = assert_error(post(customer, gateway), 403, "permission_error", "account_disabled")
    assert "deactivated" in error["message"]
    claude = httpx.post(
        f"{gateway.base_url}/v1/messages",
        json={"model": "gpt-4o", "max_tokens": 10, "messages": HELLO},
        headers={"x-api-key": customer.key.secret},
        timeout=20,
    )
    assert claude.status_code == 403
    assert claude.json()["error"]["type"] == "permission_error"
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = True
        user.save()
    assert post(customer, gateway).status_code == 200


def test_404_for_an_unknown_or_disabled_model(customer: Customer, gateway: AsgiServer) -> None:
    assert_error(
        post(customer, gateway, {"model": "nope", "messages": HELLO}),
        404,
        "invalid_request_error",
        "model_not_found",
    )
    AiModel.objects.filter(public_id="gpt-4o").update(enabled=False)
    from providers.services import catalogue_changed

    catalogue_changed()
    assert_error(post(customer, gateway), 404, "invalid_request_error", "model_not_found")


def test_429_with_retry_after_and_rate_limit_headers(
    gateway: AsgiServer, openai_catalogue: AiModel
) -> None:
    limited = customer_for(gateway, rpm=2)
    first = post(limited, gateway)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert post(limited, gateway).status_code == 200
    refused = post(limited, gateway)
    assert_error(refused, 429, "rate_limit_error", "rate_limit_exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "this API key is limited to 2 requests per minute" in refused.json()["error"]["message"]


def test_the_free_plan_is_limited_to_its_rpm(
    gateway: AsgiServer, openai_catalogue: AiModel, settings
) -> None:  # type: ignore[no-untyped-def]
    from billing.services import signup_grant
    from tests.factories import make_key, make_user

    settings.NEXAI_FREE_RPM = 1
    user = make_user()
    signup_grant(user=user)  # the gift alone keeps the account on the free plan
    key = make_key(user)
    free = Customer(key=key, client=None)  # type: ignore[arg-type]
    assert post(free, gateway).status_code == 200
    refused = post(free, gateway)
    assert_error(refused, 429, "rate_limit_error", "rate_limit_exceeded")
    # The customer learns which limit it is and how to lift it.
    message = refused.json()["error"]["message"]
    assert "free plan allows 1 requests per minute" in message
    assert f"paid plan, which allows {settings.NEXAI_PAID_RPM} per minute" in message


def test_fallback_to_the_next_route_charges_once(
    gateway: AsgiServer, transactional_db: None
) -> None:
    with (
        FakeOpenAI(expected_key="sk-up-a") as failing,
        FakeOpenAI(expected_key="sk-up-b") as working,
    ):
        first = add_provider("first", failing.base_url + "/v1", "sk-up-a")
        second = add_provider("second", working.base_url + "/v1", "sk-up-b")
        add_model("gpt-4o", (first, "gpt-4o"), (second, "gpt-4o"))
        failing.fail_next(500, times=5)
        customer = customer_for(gateway)
        response = post(customer, gateway)
        assert response.status_code == 200
        writer.flush()
        [record] = UsageRecord.objects.all()
        assert record.provider == "second" and record.charge > 0
        assert LedgerEntry.objects.filter(kind="usage").count() == 1
        assert len(failing.requests) == 1 and len(working.requests) == 1


def test_a_key_that_fails_cools_down_and_the_next_key_serves(
    gateway: AsgiServer, transactional_db: None
) -> None:
    with FakeOpenAI(expected_key={"sk-up-a", "sk-up-b"}) as fake:
        provider = add_provider("pool", fake.base_url + "/v1", "sk-up-a", "sk-up-b")
        # Weighted so that the failing key is all but certain to be tried first.
        provider.keys.filter(secret="sk-up-a").update(weight=1_000_000)
        add_model("gpt-4o", (provider, "gpt-4o"))
        fake.fail_next(429, key="sk-up-a", times=10)
        customer = customer_for(gateway)
        for _ in range(3):
            assert post(customer, gateway).status_code == 200
        tried = [(r.headers["authorization"], r.status) for r in fake.requests]
        # One 429 on the first key, then it cools down and the other key serves all three.
        assert tried == [("Bearer sk-up-a", 429)] + [("Bearer sk-up-b", 200)] * 3
        assert provider.keys.get(secret="sk-up-a").last_error == "upstream answered 429"


def test_502_when_every_route_fails_before_output(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(503, times=5)
    error = assert_error(post(customer, gateway), 502, "api_error", "upstream_error")
    assert UPSTREAM_KEY not in error["message"]
    writer.flush()
    [record] = UsageRecord.objects.all()
    assert (record.status, record.charge) == (502, 0)
    assert not LedgerEntry.objects.filter(kind="usage").exists()


def test_a_failing_stream_answers_with_the_status_not_a_200_stream(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(500, times=5)
    response = post(customer, gateway, {"model": "gpt-4o", "messages": HELLO, "stream": True})
    assert_error(response, 502, "api_error", "upstream_error")


def test_503_when_no_route_has_a_usable_key(gateway: AsgiServer, transactional_db: None) -> None:
    provider = add_provider("keyless", "http://127.0.0.1:9/v1")
    add_model("gpt-4o", (provider, "gpt-4o"))
    error = assert_error(
        post(customer_for(gateway), gateway), 503, "api_error", "no_active_provider_keys"
    )
    assert error["message"] == "No active provider keys available"


def test_504_when_the_upstream_exceeds_its_timeout(
    gateway: AsgiServer, transactional_db: None
) -> None:
    with FakeOpenAI(expected_key="sk-up-a") as slow:
        provider = add_provider("slow", slow.base_url + "/v1", "sk-up-a", timeout=1)
        add_model("gpt-4o", (provider, "gpt-4o"))
        slow.hang_next()
        assert_error(post(customer_for(gateway), gateway), 504, "api_error", "upstream_timeout")
        slow.release()


def test_an_upstream_400_is_passed_on_without_secrets(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail_next(
        400,
        {
            "error": {
                "message": f"bad max_tokens for key {UPSTREAM_KEY}",
                "type": "invalid_request_error",
            }
        },
    )
    error = assert_error(post(customer, gateway), 400, "invalid_request_error", "invalid_request")
    assert "bad max_tokens" in error["message"] and UPSTREAM_KEY not in error["message"]


def test_unknown_v1_paths_answer_in_the_openai_shape(
    gateway: AsgiServer, transactional_db: None
) -> None:
    response = httpx.get(f"{gateway.base_url}/v1/nothing-here")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"


def test_the_api_is_also_mounted_under_api_v1(customer: Customer, gateway: AsgiServer) -> None:
    response = httpx.get(
        f"{gateway.base_url}/api/v1/models",
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )
    assert response.status_code == 200 and response.json()["object"] == "list"


def test_balance_reports_credits_and_spend(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="ok", prompt_tokens=1000, completion_tokens=100)  # 3,500 credits
    assert post(customer, gateway).status_code == 200
    headers = {"authorization": f"Bearer {customer.key.secret}"}
    # Before the batch writer runs, the balance already shows the charge.
    body = httpx.get(f"{gateway.base_url}/v1/balance", headers=headers).json()
    assert (body["balance"], body["total_spent"], body["currency"]) == (
        100_000_000 - 3_500,
        3_500,
        "credits",
    )
    writer.flush()
    body = httpx.get(f"{gateway.base_url}/v1/balance", headers=headers).json()
    assert (body["balance"], body["total_spent"]) == (100_000_000 - 3_500, 3_500)
    assert "last_updated" in body


@pytest.mark.parametrize("path", ["/v1/docs", "/v1/openapi.json"])
def test_the_api_documentation_is_public(
    gateway: AsgiServer, transactional_db: None, path: str
) -> None:
    assert httpx.get(gateway.base_url + path).status_code == 200


@pytest.mark.parametrize("encoding", ["zstd", "gzip"])
def test_a_compressed_request_body_is_read_as_codex_sends_it(
    customer: Customer, fake_openai: FakeOpenAI, gateway: AsgiServer, encoding: str
) -> None:
    body = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    packed = (
        zstandard.ZstdCompressor().compress(body) if encoding == "zstd" else gzip.compress(body)
    )
    answer = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=packed,
        headers={
            "authorization": f"Bearer {customer.key.secret}",
            "content-type": "application/json",
            "content-encoding": encoding,
        },
    )
    assert answer.status_code == 200, answer.text
    assert fake_openai.last_request.json["messages"] == [{"role": "user", "content": "hi"}]


def test_a_body_that_does_not_decompress_is_a_400_and_costs_nothing(
    customer: Customer, gateway: AsgiServer
) -> None:
    answer = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=b"not zstd at all",
        headers={"authorization": f"Bearer {customer.key.secret}", "content-encoding": "zstd"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_body_encoding"
    assert settled(customer) == []


def test_a_compressed_bomb_is_refused_at_the_limit(customer: Customer, gateway: AsgiServer) -> None:
    bomb = zstandard.ZstdCompressor().compress(b" " * (MAX_JSON_BODY + 10))
    answer = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=bomb,
        headers={"authorization": f"Bearer {customer.key.secret}", "content-encoding": "zstd"},
    )
    assert answer.status_code == 413


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/", "/api/v1"])
def test_the_base_urls_answer_a_head_probe(gateway: AsgiServer, path: str) -> None:
    """Claude Code sends `HEAD /` to its base URL before the first call."""
    assert httpx.head(gateway.base_url + path).status_code == 200


def test_an_unknown_messages_path_answers_in_the_anthropic_shape(gateway: AsgiServer) -> None:
    answer = httpx.post(gateway.base_url + "/v1/messages/nope", json={})
    assert answer.status_code == 404
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "not_found_error"


def test_max_tokens_beyond_any_models_output_is_a_400_naming_it(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    AiModel.objects.filter(public_id="gpt-4o").update(max_output_tokens=16_384)
    catalogue_changed()
    answer = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
              "max_tokens": 10**12},
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )  # fmt: skip
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "max_tokens" and "at most 16384 output tokens" in error["message"]
    assert fake_openai.requests == [] and settled(customer) == []
