"""Logs: JSON lines with the request id when NEXAI_LOG_FORMAT=json, and never a
credential, whatever the format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.logs import (
    JsonFormatter,
    RedactSecrets,
    RequestId,
    logging_config,
    redact,
    request_id_var,
)

CUSTOMER_KEY = "sk-nx-" + "A1b2C3d4" * 5 + "xyz"
UPSTREAM_KEY = "sk-ant-upstream-0123456789abcdef"


def _capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through the handler settings.LOGGING describes for `fmt`
    (tests/ops/test_health.py sees a real server's JSON lines)."""
    config = logging_config(fmt=fmt, level="INFO")
    formatter = config["formatters"]["main"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter(formatter["format"])
    )
    assert config["handlers"]["console"]["filters"] == ["request_id", "redact"]
    handler.addFilter(RequestId())
    handler.addFilter(RedactSecrets())
    log = logging.getLogger("nexai.test")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, stream


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    yield _capture("json")
    logging.getLogger("nexai.test").handlers.clear()


@pytest.fixture
def plain_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    yield _capture("plain")
    logging.getLogger("nexai.test").handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_request_id(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = json_log
    token = request_id_var.set("req_0123456789abcdef01234567")
    try:
        log.warning("upstream %s cooling down", "openai", extra={"provider": "openai"})
    finally:
        request_id_var.reset(token)
    log.info("between requests")
    first, second = lines(stream)
    assert first["request_id"] == "req_0123456789abcdef01234567"
    assert first["message"] == "upstream openai cooling down"
    assert first["level"] == "WARNING"
    assert first["logger"] == "nexai.test"
    assert first["provider"] == "openai"
    assert first["time"].endswith("+00:00")
    assert second["request_id"] == ""


async def test_each_request_task_logs_its_own_id(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = json_log

    async def serve(request_id: str) -> None:
        request_id_var.set(request_id)
        await asyncio.sleep(0)  # interleave the two requests
        log.info("served")

    await asyncio.gather(serve("req_a"), serve("req_b"))
    assert sorted(line["request_id"] for line in lines(stream)) == ["req_a", "req_b"]


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_credentials_never_reach_the_log(fmt: str) -> None:
    log, stream = _capture(fmt)
    try:
        log.warning("key %s refused", CUSTOMER_KEY)
        log.warning("headers: Authorization: Bearer %s", UPSTREAM_KEY)
        log.warning("connecting to postgres://nexai:hunter2-pw@db:5432/nexai")
        log.warning("gemini url ...?key=AIzaSyA-0123456789abcdef")
        try:
            raise ValueError(f"upstream said: invalid x-api-key {UPSTREAM_KEY}")
        except ValueError:
            log.exception("call failed")
    finally:
        logging.getLogger("nexai.test").handlers.clear()
    written = stream.getvalue()
    for secret in (CUSTOMER_KEY, UPSTREAM_KEY, "hunter2-pw", "AIzaSyA-0123456789abcdef"):
        assert secret not in written
    assert "postgres://nexai:[redacted]@db:5432/nexai" in written
    assert "call failed" in written and "ValueError" in written


def test_ordinary_words_are_not_redacted() -> None:
    text = "input_tokens=12 output_tokens=3 primary_key=5 model=gpt-4o keys: 2"
    assert redact(text) == text
