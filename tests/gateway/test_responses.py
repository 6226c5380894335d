"""/v1/responses with the official openai SDK's `client.responses` as the client, on
OpenAI-, Anthropic- and Gemini-kind models (fake upstreams over real HTTP). The
gateway translates to chat completions and keeps stored responses itself."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from gateway.models import StoredResponse
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import ToolCall
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, customer_for, settled
from tests.servers import AsgiServer

INPUT_PRICE, OUTPUT_PRICE = 2_500_000, 10_000_000
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def charge_for(prompt: int, completion: int) -> int:
    return -(-(prompt * INPUT_PRICE + completion * OUTPUT_PRICE) // 1_000_000)


def test_a_response_is_answered_stored_and_charged_exactly(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="Hi there!", prompt_tokens=120, completion_tokens=3)
    response = funded.client.responses.create(
        model="gpt-4o", instructions="Be brief.", input="Hello", max_output_tokens=64
    )
    assert response.output_text == "Hi there!" and response.status == "completed"
    assert response.id.startswith("resp_") and response.model == "gpt-4o"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (120, 3)
    sent = fake_openai.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent["max_tokens"] == 64
    [record] = settled(funded)
    assert (record.endpoint, record.charge) == ("responses", charge_for(120, 3))
    assert record.ledger_entry.amount == -record.charge
    assert record.request_id.removeprefix("req_") == response.id.removeprefix("resp_")
    stored = StoredResponse.objects.get(response_id=response.id)
    assert stored.user == funded.user and stored.body["output"][0]["content"][0]["text"] == (
        "Hi there!"
    )
    assert funded.client.responses.retrieve(response.id).output_text == "Hi there!"


def test_a_streamed_response_with_the_sdk_stream_helper(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(text="one two three", prompt_tokens=30, completion_tokens=3)
    with funded.client.responses.stream(model="claude-sonnet", input="Count") as stream:
        events = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "one two three" and final.status == "completed"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 3)
    assert events[:2] == ["response.created", "response.in_progress"]
    assert events.count("response.output_text.delta") == 3
    assert events[-1] == "response.completed"
    [record] = settled(funded)
    assert record.stream and record.charge == charge_for(30, 3)


def test_responses_chain_with_previous_response_id_across_models(
    funded: Customer, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    fake_openai.set_reply(text="Nice to meet you, Ada.")
    first = funded.client.responses.create(model="gpt-4o", input="My name is Ada.")
    fake_gemini.set_reply(text="Your name is Ada.")
    # Streamed, on another upstream kind: the history is the gateway's, not OpenAI's.
    stream = funded.client.responses.create(
        model="gemini-flash", input="What is my name?", previous_response_id=first.id,
        stream=True,
    )  # fmt: skip
    completed = next(e for e in stream if e.type == "response.completed").response
    assert completed.output_text == "Your name is Ada."
    assert completed.previous_response_id == first.id
    contents = fake_gemini.last_request.json["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "My name is Ada."),
        ("model", "Nice to meet you, Ada."),
        ("user", "What is my name?"),
    ]
    # Stored before response.completed reached the client: chaining at once works.
    fake_openai.set_reply(text="Ada, still.")
    third = funded.client.responses.create(
        model="gpt-4o", input="And now?", previous_response_id=completed.id
    )
    assert third.output_text == "Ada, still."
    assert [m["role"] for m in fake_openai.last_request.json["messages"]] == [
        "user", "assistant", "user", "assistant", "user",
    ]  # fmt: skip


def test_a_function_call_round_trip_on_a_claude_model(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="t1")])
    first = funded.client.responses.create(
        model="claude-sonnet", input="Weather in Paris?", tools=[WEATHER_TOOL]
    )
    [call] = first.output
    assert call.type == "function_call" and call.call_id == "t1"
    assert call.name == "get_weather" and call.arguments == '{"city": "Paris"}'
    assert fake_anthropic.last_request.json["tools"][0]["input_schema"]["required"] == ["city"]
    fake_anthropic.set_reply(text="Sunny, 24 degrees.")
    second = funded.client.responses.create(
        model="claude-sonnet",
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": "t1", "output": "sunny, 24C"}],
    )
    assert second.output_text == "Sunny, 24 degrees."
    messages = fake_anthropic.last_request.json["messages"]
    assert messages[1]["content"][0] == {
        "type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"},
    }  # fmt: skip
    assert messages[2]["content"][0] == {
        "type": "tool_result", "tool_use_id": "t1", "content": "sunny, 24C",
    }  # fmt: skip


def test_store_false_keeps_nothing(funded: Customer, fake_openai: FakeOpenAI) -> None:
    response = funded.client.responses.create(model="gpt-4o", input="Hi", store=False)
    assert response.store is False
    assert not StoredResponse.objects.filter(response_id=response.id).exists()
    with pytest.raises(openai.NotFoundError):
        funded.client.responses.retrieve(response.id)


def test_a_stored_response_can_be_deleted(funded: Customer, fake_openai: FakeOpenAI) -> None:
    response = funded.client.responses.create(model="gpt-4o", input="Hi")
    funded.client.responses.delete(response.id)
    assert not StoredResponse.objects.filter(response_id=response.id).exists()
    with pytest.raises(openai.NotFoundError):
        funded.client.responses.delete(response.id)


def test_another_customers_response_is_not_found(
    gateway: AsgiServer, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    theirs = funded.client.responses.create(model="gpt-4o", input="A secret.")
    other = customer_for(gateway)
    with pytest.raises(openai.NotFoundError) as raised:
        other.client.responses.create(
            model="gpt-4o", input="What was said?", previous_response_id=theirs.id
        )
    assert raised.value.body["param"] == "previous_response_id"
    assert raised.value.body["type"] == "invalid_request_error"
    assert theirs.id in raised.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        other.client.responses.retrieve(theirs.id)
    with pytest.raises(openai.NotFoundError):
        other.client.responses.delete(theirs.id)
    assert StoredResponse.objects.filter(response_id=theirs.id).exists()
    assert len(fake_openai.requests) == 1
    assert settled(other) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o"}, "input"),
        (
            {
                "model": "gpt-4o",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {"type": "input_image", "image_url": "data:image/png;base64,@@@"},
                        ],
                    }
                ],
            },
            "input[0].content[1].image_url",
        ),
        (
            {
                "model": "gpt-4o",
                "input": "hi",
                "tools": [{"type": "web_search"}],
                "tool_choice": {"type": "web_search"},
            },
            "tool_choice",
        ),
        ({"model": "gpt-4o", "input": "hi", "max_output_tokens": -1}, "max_output_tokens"),
        ({"model": "gpt-4o", "input": "hi", "temperature": 9}, "temperature"),
    ],
)
def test_bad_requests_answer_400_naming_the_field(
    funded: Customer, fake_openai: FakeOpenAI, body: dict, param: str
) -> None:
    response = httpx.post(
        f"{funded.client.base_url}responses", json=body,
        headers={"authorization": f"Bearer {funded.key.secret}"},
    )  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fake_openai.requests == [] and settled(funded) == []


def test_a_failure_mid_stream_ends_with_response_failed(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="alpha beta gamma delta")
    fake_openai.fail_mid_stream_after = 2
    events = list(funded.client.responses.create(model="gpt-4o", input="Go", stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    response = events[-1].response
    assert response.status == "failed"
    assert not StoredResponse.objects.filter(response_id=response.id).exists()


def test_a_codex_cli_shaped_request_streams_from_a_claude_model(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    """What Codex CLI sends: store false, instructions, developer and user items, past
    reasoning items, function tools, no parallel calls, reasoning settings, includes."""
    fake_anthropic.set_reply(tool_calls=[ToolCall("shell", '{"command": ["ls"]}', id="tc1")])
    shell = {
        "type": "function", "name": "shell", "description": "Runs a command",
        "strict": False,
        "parameters": {"type": "object", "properties": {
            "command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]},
    }  # fmt: skip
    stream = funded.client.responses.create(
        model="claude-sonnet",
        instructions="You are a coding agent.",
        input=[
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "<environment_context/>"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "List the files."}]},
        ],
        tools=[shell], tool_choice="auto", parallel_tool_calls=False, store=False, stream=True,
        reasoning={"effort": "medium", "summary": "auto"},
        include=["reasoning.encrypted_content"], prompt_cache_key="session-1",
    )  # fmt: skip
    events = list(stream)
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [(i.type, i.name, i.call_id) for i in done] == [("function_call", "shell", "tc1")]
    assert json.loads(done[0].arguments) == {"command": ["ls"]}
    assert events[-1].type == "response.completed"
    sent = fake_anthropic.last_request.json
    assert sent["system"] == [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "<environment_context/>"},
    ]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "List the files."}]}
    ]
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert not StoredResponse.objects.exists()
