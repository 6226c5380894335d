"""The captured Gemini CLI and Qwen Code requests (tests/conformance/requests), replayed
as they were sent against the gateway on a real port, on an OpenAI-kind, an
Anthropic-kind and a Gemini-kind model: each is answered as Google's SDK parses it,
and charged exactly the fake upstream's usage at the model's price. No agent binary is
needed here."""

from __future__ import annotations

import json
from math import ceil
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.genai import types

from providers.translation import SSEParser
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, settled

from .conftest import GoogleStack

pytestmark = pytest.mark.agents

CORPUS = Path(__file__).parent.parent / "conformance" / "requests"
PROMPT_TOKENS, COMPLETION_TOKENS = 900, 21
MODELS = ["gpt-4o", "claude-sonnet", "gemini-pro"]


def turns() -> list[Any]:
    return [
        pytest.param(path.name, id=path.stem)
        for path in sorted(CORPUS.glob("*.json"))
        if path.name.endswith("streamgeneratecontent.json")
    ]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", turns())
def test_captured_gemini_turn_is_answered_and_charged(
    google: GoogleStack, name: str, model: str
) -> None:
    for fake in (google.openai, google.anthropic, google.gemini):
        fake.set_reply(
            text="Replayed.", prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS
        )
    # History captured against another server carries signatures Google never gave
    # this fake; what is checked here is the shape of the rest.
    google.gemini.check_signatures = False
    captured = json.loads((CORPUS / name).read_text())
    headers = {k: v for k, v in captured["headers"].items() if v != "<scrubbed>"}
    headers.pop("accept-encoding", None)
    headers["x-goog-api-key"] = google.customer.key.secret
    path = captured["path"].replace(captured["path"].split("/")[3].split(":")[0], model)
    response = httpx.post(
        google.gateway.base_url + path, params=captured["query"], headers=headers,
        content=json.dumps(captured["body"]).encode(), timeout=30,
    )  # fmt: skip
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/event-stream")
    parser = SSEParser()
    chunks = [
        types.GenerateContentResponse.model_validate_json(data)
        for _, data in parser.feed(response.content) + parser.finish()
    ]
    assert "".join(c.text or "" for c in chunks) == "Replayed."
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert {c.model_version for c in chunks} == {model}
    expected = ceil((PROMPT_TOKENS * INPUT_PRICE + COMPLETION_TOKENS * OUTPUT_PRICE) / 1_000_000)
    records = settled(google.customer)
    assert [(r.status, r.input_tokens, r.output_tokens, r.charge) for r in records] == [
        (200, PROMPT_TOKENS, COMPLETION_TOKENS, expected)
    ]
