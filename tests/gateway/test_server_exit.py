"""A server process that is stopped after serving upstream calls exits cleanly, under
uvicorn (which tells the app through the ASGI lifespan) and under daphne, `make run`'s
server (which has no lifespan): nothing is left open for the garbage collector to
report as an error at each restart."""

from __future__ import annotations

import httpx
import pytest

from providers.models import AiModel
from tests.factories import make_key, make_user
from tests.fakes.openai import FakeOpenAI
from tests.servers import ServerProcess

pytestmark = [pytest.mark.postgres]


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_a_server_stopped_after_upstream_calls_logs_no_error(
    server: str, openai_catalogue: AiModel, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="hello there", prompt_tokens=5)
    key = make_key(make_user(credits=1_000_000))
    process = ServerProcess(server=server, capture=True)
    try:
        for stream in (False, True):
            response = httpx.post(
                process.url + "/v1/chat/completions",
                json={"model": "gpt-4o", "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {key.secret}"},
                timeout=30,
            )  # fmt: skip
            assert response.status_code == 200, response.text
    finally:
        errors = process.stop()
    assert "Unclosed" not in errors
    assert "Traceback" not in errors
