"""/healthz says the process is up; /readyz says whether it can serve and account for
requests, check by check, with 200 or 503."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from core import redis as nxredis
from gateway import backlog, writer
from providers.models import AiModel
from tests.gateway.conftest import Customer
from tests.ops.conftest import RedisServer, free_port, get, uvicorn
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "hi"}]


def test_healthz_answers_ok(gateway: AsgiServer) -> None:
    response = get(gateway.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_is_ready_when_everything_answers(
    gateway: AsgiServer, openai_catalogue: AiModel
) -> None:
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert checks["database"] == {"state": "ok"}
    assert checks["redis"]["state"] == ("ok" if settings.REDIS_URL else "skipped")
    assert checks["catalogue"] == {"state": "ok", "models": 2}
    assert checks["writer"]["state"] == "ok"
    assert checks["writer"]["queued"] == 0


def test_readyz_is_unready_until_a_catalogue_is_loaded(gateway: AsgiServer) -> None:
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready"
    assert body["checks"]["catalogue"] == {"state": "fail", "models": 0}
    assert body["checks"]["database"] == {"state": "ok"}


def test_readyz_fails_while_the_usage_writer_falls_behind(
    customer: Customer, gateway: AsgiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer.client.chat.completions.create(model="gpt-4o", messages=HELLO)
    # The charge is queued (the tests' servers leave writing to writer.flush()).
    ready = get(gateway.base_url + "/readyz").json()["checks"]["writer"]
    assert ready["state"] == "ok" and ready["queued"] == 1

    # Two minutes later, still unwritten: past the bound of one minute.
    monkeypatch.setattr(settings, "NEXAI_READY_MAX_WRITER_LAG", 60)
    later = time.time() + 120

    class Clock:
        @staticmethod
        def time() -> float:
            return later

    monkeypatch.setattr(backlog, "time", Clock)
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 503
    lagging = response.json()["checks"]["writer"]
    assert lagging["state"] == "fail"
    assert lagging["queued"] == 1
    assert lagging["lag_seconds"] >= 119

    writer.flush()
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["writer"]["queued"] == 0


def test_readyz_fails_when_redis_goes_down(
    gateway: AsgiServer,
    openai_catalogue: AiModel,
    own_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The gateway's Redis is one the test can stop (the hot path's shared client is
    # set aside and restored afterwards).
    monkeypatch.setattr(settings, "REDIS_URL", own_redis.url)
    monkeypatch.setattr(nxredis, "_sync", None)
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == {"state": "ok"}

    own_redis.stop()
    response = get(gateway.base_url + "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == {"state": "fail", "error": "ConnectionError"}
    assert checks["writer"]["state"] == "fail"  # the charge queue lives there
    assert checks["database"] == {"state": "ok"}
    # The process itself is fine: an orchestrator must not restart it for this.
    assert get(gateway.base_url + "/healthz").status_code == 200


def test_readyz_fails_when_postgresql_is_unreachable(tmp_path: object) -> None:
    """A server whose database does not answer stays up (healthz 200) and unready."""
    port = free_port()
    server = uvicorn(
        port,
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"postgres://nexai:pw-s3cret@127.0.0.1:{free_port()}/nexai_ops",
            "NEXAI_LOG_FORMAT": "json",
        },
    )
    try:
        server.wait_for("Uvicorn running on")
        base = f"http://127.0.0.1:{port}"
        assert get(base + "/healthz").status_code == 200
        response = get(base + "/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"] == {"state": "fail", "error": "OperationalError"}
        assert checks["catalogue"]["state"] == "fail"
    finally:
        server.stop()
    # Its logs are JSON lines, and the database password is in none of them.
    logged = server.output()
    assert "pw-s3cret" not in logged
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gateway.readiness" for line in lines)
    assert any("Started server process" in line["message"] for line in lines)
    # --no-access-log stays in force (an access line per request costs CPU).
    assert not any(line["logger"] == "uvicorn.access" for line in lines)
