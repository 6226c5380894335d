"""Every failure under /v1 and /api/v1 answers JSON in the caller's dialect (OpenAI's
error shape, Anthropic's on /v1/messages paths, Google's on the Gemini API's) with an
x-request-id: unknown paths,
wrong methods, oversized bodies, crashes, upstream faults, and a Redis or database the
gateway cannot reach (503 service_unavailable: it fails closed)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from providers.models import Provider, Route
from providers.services import catalogue_changed
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.gateway.conftest import Customer, add_provider
from tests.gateway.test_concurrency import _wait_until_up
from tests.servers import AsgiServer

ROOT = Path(__file__).resolve().parents[2]
OPENAI, ANTHROPIC, GEMINI = "openai", "anthropic", "gemini"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
GENERATE = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
    413: "INVALID_ARGUMENT", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}  # fmt: skip
RESPONSES = {"model": "gpt-4o", "input": "hi", "max_output_tokens": 20}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def call(base_url: str, method: str, path: str, *, secret: str | None = None,
         body: dict | None = None, length: int | None = None) -> Answer:  # fmt: skip
    """One request over a plain connection; `length` claims a Content-Length without
    sending that much (the gateway must answer from the header)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    payload = httpx.Request("POST", "http://x", json=body).read() if body is not None else b""
    conn.putrequest(method, path)
    if secret:
        conn.putheader("Authorization", f"Bearer {secret}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(length if length is not None else len(payload)))
    conn.endheaders()
    if length is None and payload:
        conn.send(payload)
    response = conn.getresponse()
    answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())  # fmt: skip
    conn.close()
    return answer


def assert_shape(answer: Answer, status: int, dialect: str, code: str | None = None) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    assert answer.headers["x-request-id"].startswith("req_")
    body = httpx.Response(200, content=answer.body).json()
    if dialect == ANTHROPIC:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    elif dialect == GEMINI:
        assert set(body["error"]) == {"code", "message", "status", "details"}, body
        assert body["error"]["code"] == status and body["error"]["message"], body
        assert body["error"]["status"] == GOOGLE_STATUSES[status], body
        if code is not None:
            assert body["error"]["details"][0]["reason"] == code.upper(), body
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        if code is not None:
            assert body["error"]["code"] == code, body


# (method, path, expected status, dialect, code)
ROUTING = [
    ("GET", "/v1/nothing-here", 404, OPENAI, "unknown_url"),
    ("POST", "/api/v1/nothing-here", 404, OPENAI, "unknown_url"),
    ("GET", "/v1/messages/nothing-here", 404, ANTHROPIC, None),
    ("POST", "/api/v1/messages/batches", 404, ANTHROPIC, None),
    ("GET", "/v1/chat/completions", 405, OPENAI, "method_not_allowed"),
    ("PUT", "/api/v1/embeddings", 405, OPENAI, "method_not_allowed"),
    ("DELETE", "/v1/models", 405, OPENAI, "method_not_allowed"),
    ("GET", "/v1/messages", 405, ANTHROPIC, None),
    ("GET", "/api/v1/messages/count_tokens", 405, ANTHROPIC, None),
    ("GET", "/v1beta/nothing-here", 404, GEMINI, "unknown_url"),
    ("GET", "/v1beta/models/no-such-model", 404, GEMINI, "model_not_found"),
    ("GET", "/v1beta/models/gpt-4o:generateContent", 405, GEMINI, "method_not_allowed"),
    ("POST", "/v1/models/gpt-4o:streamGenerateContent", 400, GEMINI, "invalid_json"),
    ("DELETE", "/api/v1beta/models", 405, GEMINI, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "status", "dialect", "code"), ROUTING)
def test_unknown_paths_and_wrong_methods_answer_in_the_callers_shape(
    customer: Customer, gateway: AsgiServer, method: str, path: str, status: int,
    dialect: str, code: str | None,
) -> None:  # fmt: skip
    answer = call(gateway.base_url, method, path, secret=customer.key.secret)
    assert_shape(answer, status, dialect, code)
    if status == 405:
        assert answer.headers["allow"]


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/v1/chat/completions", OPENAI), ("/v1/messages", ANTHROPIC),
        ("/api/v1/responses", OPENAI), ("/v1beta/models/gpt-4o:generateContent", GEMINI),
    ],
)  # fmt: skip
def test_an_oversized_body_is_a_413_in_the_callers_shape(
    customer: Customer, gateway: AsgiServer, path: str, dialect: str
) -> None:
    answer = call(gateway.base_url, "POST", path, secret=customer.key.secret, length=40 * 2**20)
    assert_shape(answer, 413, dialect, "request_too_large")


def _break_the_adapter() -> None:
    """A provider kind no adapter serves: the request path crashes (a bug, here on
    purpose) when it looks the adapter up."""
    Provider.objects.filter(name="openai").update(kind="no-such-kind")
    catalogue_changed()


def _fail(status: int, **kwargs: object) -> Callable[[FakeOpenAI], None]:
    return lambda fake: fake.fail_next(status, times=5, **kwargs)


def _no_keys() -> None:
    Route.objects.all().update(provider=add_provider("keyless", "http://127.0.0.1:9/v1"))
    catalogue_changed()


# (fault, expected status, code): the fault is applied to the fake or the catalogue.
FAULTS = [
    ("crash", 500, "internal_error"),
    ("upstream 500", 502, "upstream_error"),
    ("upstream 401", 502, "upstream_error"),
    ("upstream 400", 400, "invalid_request"),
    ("upstream timeout", 504, "upstream_timeout"),
    ("garbage 200", 502, "upstream_error"),
    ("no keys", 503, "no_active_provider_keys"),
]
DIALECTS = [
    ("/v1/chat/completions", CHAT, OPENAI),
    ("/v1/messages", CHAT, ANTHROPIC),
    ("/api/v1/responses", RESPONSES, OPENAI),
    ("/v1beta/models/gpt-4o:generateContent", GENERATE, GEMINI),
]


@pytest.mark.parametrize(("fault", "status", "code"), FAULTS)
@pytest.mark.parametrize(("path", "body", "dialect"), DIALECTS)
@pytest.mark.parametrize("stream", [False, True])
def test_every_failure_answers_in_the_callers_shape(
    customer: Customer, gateway: AsgiServer, fake_openai: FakeOpenAI, fault: str,
    status: int, code: str, path: str, body: dict, dialect: str, stream: bool,
) -> None:  # fmt: skip
    Provider.objects.filter(name="openai").update(timeout=1)
    catalogue_changed()
    if fault == "crash":
        _break_the_adapter()
    elif fault == "no keys":
        _no_keys()
    elif fault == "upstream timeout":
        fake_openai.hang_next(times=5)
    elif fault == "garbage 200":
        content_type = "text/event-stream" if stream else "text/html"
        fake_openai.fail_next(200, b"<html>oops</html>", times=5, content_type=content_type)
    else:
        upstream_status = int(fault.split()[1])
        _fail(upstream_status, body=openai_error(upstream_status, "the upstream says no"))(
            fake_openai
        )
    answer = call(gateway.base_url, "POST", path, secret=customer.key.secret,
                  body={**body, "stream": stream})  # fmt: skip
    fake_openai.release()
    assert_shape(answer, status, dialect, None if dialect == ANTHROPIC else code)


# -- a store the gateway needs is unreachable -------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "nexai.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "critical", "--lifespan", "off"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def without_redis() -> Iterator[str]:
    """A gateway whose Redis refuses connections (nothing listens on its port)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield from _serve(
            {
                "REDIS_URL": f"redis://127.0.0.1:{_free_port()}/6",
                "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3",
            }
        )


@pytest.fixture(scope="module")
def without_database() -> Iterator[str]:
    """A gateway (embedded default, no Redis) whose PostgreSQL refuses connections."""
    env = {"DATABASE_URL": f"postgres://postgres@127.0.0.1:{_free_port()}/nexai_gone"}
    saved = os.environ.pop("REDIS_URL", None)
    try:
        yield from _serve(env)
    finally:
        if saved is not None:
            os.environ["REDIS_URL"] = saved


STORE_CALLS = [
    ("POST", "/v1/chat/completions", CHAT, OPENAI),
    ("POST", "/api/v1/responses", RESPONSES, OPENAI),
    ("POST", "/v1/messages", CHAT, ANTHROPIC),
    ("GET", "/v1/models", None, OPENAI),
    ("GET", "/v1/balance", None, OPENAI),
]


@pytest.mark.parametrize("store", ["redis", "database"])
@pytest.mark.parametrize(("method", "path", "body", "dialect"), STORE_CALLS)
def test_an_unreachable_redis_or_database_is_a_503_in_the_callers_shape(
    request: pytest.FixtureRequest, store: str, method: str, path: str, body: dict | None,
    dialect: str,
) -> None:  # fmt: skip
    base_url = request.getfixturevalue("without_redis" if store == "redis" else "without_database")
    answer = call(base_url, method, path, secret="sk-nx-" + "a" * 43, body=body)
    assert_shape(answer, 503, dialect, "service_unavailable")
