"""/v1/responses on a model whose every route speaks the Responses API natively (an
OpenAI-kind provider marked `responses_api: true`): forwarded as written, answered
with the upstream's own bytes, metered by its usage, kept for GET."""

from __future__ import annotations

import httpx
import pytest

from gateway.models import StoredResponse
from providers.models import Provider
from tests.fakes.base import ToolCall
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import UPSTREAM_KEY, Customer, add_model, add_provider, settled
from tests.gateway.test_responses import charge_for

# What Codex CLI sends and a translation to chat cannot carry.
CODEX_TOOLS = [
    {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                          "definition": "start: /.+/"}},
    {"type": "namespace", "name": "multi_agent_v1", "tools": []},
    {"type": "web_search", "external_web_access": False},
]  # fmt: skip
CODEX_BODY = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-opaque"},
    ],
    "tools": CODEX_TOOLS,
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conversation-1",
}


@pytest.fixture
def native_model(customer: Customer, fake_openai: FakeOpenAI) -> None:
    provider = Provider.objects.get(name="openai")
    provider.settings = {"responses_api": True}
    provider.save()
    add_model("gpt-5-codex", (provider, "gpt-5-codex-upstream"))


def _post(gateway_url: str, customer: Customer, body: dict) -> httpx.Response:
    return httpx.post(
        gateway_url + "/v1/responses",
        json=body,
        headers={"authorization": f"Bearer {customer.key.secret}"},
        timeout=10,
    )


def test_codex_tools_reach_the_upstream_as_written_and_the_charge_is_its_usage(
    gateway, customer: Customer, fake_openai: FakeOpenAI, native_model: None
) -> None:
    fake_openai.set_reply(text="Hello from upstream", prompt_tokens=500, completion_tokens=20)
    answer = _post(gateway.base_url, customer, {**CODEX_BODY, "stream": True})
    assert answer.status_code == 200, answer.text
    sent = fake_openai.last_request
    assert sent.path == "/v1/responses"
    assert sent.json == {**CODEX_BODY, "stream": True, "model": "gpt-5-codex-upstream"}
    # The upstream's events, byte for byte.
    assert b"response.output_text.delta" in answer.content
    assert b"Hello from upstream" in answer.content
    [record] = settled(customer)
    assert (record.endpoint, record.input_tokens, record.output_tokens) == ("responses", 500, 20)
    assert not record.estimated and record.charge == charge_for(500, 20)
    assert record.ledger_entry.amount == -record.charge


def test_a_whole_native_response_is_kept_for_get_and_charged(
    gateway, customer: Customer, fake_openai: FakeOpenAI, native_model: None
) -> None:
    fake_openai.set_reply(
        tool_calls=[ToolCall("shell", {"command": ["echo", "hi"]})],
        prompt_tokens=80,
        completion_tokens=9,
    )
    body = {**CODEX_BODY, "store": True}
    answer = _post(gateway.base_url, customer, body)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    assert response["output"][0]["type"] == "function_call"
    [record] = settled(customer)
    assert record.charge == charge_for(80, 9)
    assert StoredResponse.objects.filter(response_id=response["id"], user=customer.user).exists()
    fetched = httpx.get(
        f"{gateway.base_url}/v1/responses/{response['id']}",
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )
    assert fetched.json()["id"] == response["id"]


def test_a_model_whose_routes_do_not_all_speak_responses_is_translated(
    gateway, customer: Customer, fake_openai: FakeOpenAI
) -> None:
    plain = add_provider("compat", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    add_model("compat-model", (plain, "compat-model"))
    answer = _post(gateway.base_url, customer, {"model": "compat-model", "input": "hi"})
    assert answer.status_code == 200, answer.text
    assert fake_openai.last_request.path == "/v1/chat/completions"


COMPACT_BODY = {
    "model": "compat-model",
    "instructions": "Summarize the conversation so far for a new context window.",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "yo"}],
        },
    ],
}


def test_codex_compaction_on_a_translated_model_answers_the_summary_as_items(
    gateway, customer: Customer, fake_openai: FakeOpenAI
) -> None:
    plain = add_provider("compat", fake_openai.base_url + "/v1", UPSTREAM_KEY)
    add_model("compat-model", (plain, "compat-model"))
    fake_openai.set_reply(text="The user said hi.", prompt_tokens=60, completion_tokens=6)
    answer = httpx.post(
        gateway.base_url + "/v1/responses/compact",
        json=COMPACT_BODY,
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )
    assert answer.status_code == 200, answer.text
    compacted = answer.json()
    assert compacted["object"] == "response.compaction"
    [item] = compacted["output"]
    assert item["type"] == "message" and item["content"][0]["text"] == "The user said hi."
    [record] = settled(customer)
    assert (record.endpoint, record.charge) == ("responses.compact", charge_for(60, 6))


def test_codex_compaction_is_forwarded_to_an_upstream_that_speaks_responses(
    gateway, customer: Customer, fake_openai: FakeOpenAI, native_model: None
) -> None:
    fake_openai.set_reply(prompt_tokens=900, completion_tokens=40)
    answer = httpx.post(
        gateway.base_url + "/v1/responses/compact",
        json={**COMPACT_BODY, "model": "gpt-5-codex"},
        headers={"authorization": f"Bearer {customer.key.secret}"},
    )
    assert answer.status_code == 200, answer.text
    assert fake_openai.last_request.path == "/v1/responses/compact"
    assert fake_openai.last_request.json["model"] == "gpt-5-codex-upstream"
    # The upstream's opaque compaction item, as it came.
    assert answer.json()["output"][0]["encrypted_content"] == "gAAAA-fake"
    [record] = settled(customer)
    assert record.charge == charge_for(900, 40) and not record.estimated
