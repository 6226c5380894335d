"""/v1/messages with the official anthropic SDK as the client, to an Anthropic-kind
model (fake Anthropic upstream) and to an OpenAI-kind model (fake OpenAI upstream),
both over real HTTP. Errors always come back in Anthropic's shape."""

from __future__ import annotations

import base64

import anthropic
import httpx
import pytest

from billing.pricing import token_charge
from providers.catalogue import get_catalogue
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import ToolCall
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import ANTHROPIC_KEY, Customer, anthropic_client, customer_for, settled
from tests.servers import AsgiServer

HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
# gpt-4o's and claude-sonnet's prices in the test catalogue, credits per 1M tokens.
INPUT_PRICE, OUTPUT_PRICE = 2_500_000, 10_000_000


def charge_for(prompt: int, completion: int) -> int:
    return -(-(prompt * INPUT_PRICE + completion * OUTPUT_PRICE) // 1_000_000)


@pytest.fixture
def client(gateway: AsgiServer, funded: Customer) -> anthropic.Anthropic:
    return anthropic_client(gateway, funded)


def post(gateway: AsgiServer, path: str, body: object, *, key: str | None) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01"}
    if key is not None:
        headers["x-api-key"] = key
    return httpx.post(f"{gateway.base_url}/v1/{path}", json=body, headers=headers, timeout=10)


# -- to an Anthropic-kind model ---------------------------------------------------------


def test_a_message_to_a_claude_model_is_answered_and_charged_exactly(
    client: anthropic.Anthropic, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(text="Hello, human.", prompt_tokens=1234, completion_tokens=567)
    message = client.messages.create(
        model="claude-sonnet", max_tokens=300, system="Be brief.", messages=HELLO,
        stop_sequences=["END"],
    )  # fmt: skip
    assert message.content[0].type == "text" and message.content[0].text == "Hello, human."
    # Forwarded untouched: the model named is the one that answered.
    assert message.model == "claude-sonnet-4-5" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1234, 567)
    upstream = fake_anthropic.last_request
    assert upstream.headers["x-api-key"] == ANTHROPIC_KEY
    assert upstream.headers["anthropic-version"] == "2023-06-01"
    assert upstream.json["model"] == "claude-sonnet-4-5"
    assert upstream.json["system"] == "Be brief." and upstream.json["max_tokens"] == 300
    assert upstream.json["stop_sequences"] == ["END"]
    [record] = settled(funded)
    assert (record.endpoint, record.input_tokens, record.output_tokens) == ("messages", 1234, 567)
    assert record.charge == charge_for(1234, 567) and not record.estimated
    assert record.ledger_entry.amount == -record.charge


def test_a_streamed_message_from_a_claude_model(
    client: anthropic.Anthropic, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(text="one two three", prompt_tokens=40, completion_tokens=3)
    with client.messages.stream(model="claude-sonnet", max_tokens=100, messages=HELLO) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "one two three"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 3)
    raw = [t for t in types if t not in ("text",)]
    assert raw[0] == "message_start" and raw[-1] == "message_stop"
    assert raw[1] == "content_block_start" and "message_delta" in raw
    [record] = settled(funded)
    assert record.stream and record.charge == charge_for(40, 3)


# -- to an OpenAI-kind model --------------------------------------------------------------


def test_a_message_to_an_openai_model_is_translated_both_ways(
    client: anthropic.Anthropic, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="Bonjour", prompt_tokens=21, completion_tokens=2)
    message = client.messages.create(
        model="gpt-4o", max_tokens=50, system="Answer in French.", messages=HELLO
    )
    assert message.content[0].text == "Bonjour" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 2)
    assert message.id.startswith("msg_")
    sent = fake_openai.last_request.json
    assert sent["model"] == "gpt-4o" and sent["max_tokens"] == 50
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Say hello"},
    ]
    [record] = settled(funded)
    assert record.charge == charge_for(21, 2)


def test_a_streamed_message_from_an_openai_model_with_a_tool_call(
    client: anthropic.Anthropic, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(
        text="Let me check.",
        tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="call_1")],
        prompt_tokens=60,
        completion_tokens=9,
    )
    with client.messages.stream(
        model="gpt-4o", max_tokens=200, messages=HELLO, tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    types = [e.type for e in events if e.type not in ("text", "input_json")]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == 2 and types.count("content_block_stop") == 2
    text, tool = final.content
    assert text.type == "text" and text.text == "Let me check."
    assert tool.type == "tool_use" and tool.id == "call_1" and tool.name == "get_weather"
    assert tool.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (60, 9)
    sent = fake_openai.last_request.json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    [record] = settled(funded)
    assert record.stream and record.charge == charge_for(60, 9)


def test_a_tool_result_goes_back_to_an_openai_model_as_a_tool_message(
    client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="It is sunny in Paris.")
    message = client.messages.create(
        model="gpt-4o",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    )
    assert message.content[0].text == "It is sunny in Paris."
    sent = fake_openai.last_request.json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "toolu_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}


def test_a_failure_mid_stream_ends_with_an_anthropic_error_event(
    gateway: AsgiServer, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(text="alpha beta gamma delta")
    fake_anthropic.error_mid_stream_after = 2
    body = {"model": "claude-sonnet", "max_tokens": 50, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.base_url}/v1/messages", json=body,
        headers={"x-api-key": funded.key.secret}, timeout=10,
    ) as response:  # fmt: skip
        assert response.status_code == 200
        text = response.read().decode()
    assert text.startswith("event: message_start")
    # Anthropic's own error event, forwarded as the last one.
    last = text.rstrip().rsplit("\n\n", 1)[-1]
    assert last.startswith("event: error\n")
    assert '"error":{"type":"overloaded_error","message":"Overloaded"}' in last
    assert "message_stop" not in text
    [record] = settled(funded)
    assert record.charge > 0  # what was delivered is charged


# -- auth and errors in Anthropic's shape ------------------------------------------------


def test_the_x_api_key_header_authenticates(
    gateway: AsgiServer, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    body = {"model": "claude-sonnet", "max_tokens": 20, "messages": HELLO}
    response = post(gateway, "messages", body, key=funded.key.secret)
    assert response.status_code == 200 and response.json()["type"] == "message"
    assert response.headers["x-request-id"].startswith("req_")
    also = httpx.post(
        f"{gateway.base_url}/api/v1/messages", json=body,
        headers={"x-api-key": funded.key.secret}, timeout=10,
    )  # fmt: skip
    assert also.status_code == 200 and also.json()["content"][0]["type"] == "text"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "claude-sonnet", "messages": HELLO}, "max_tokens"),
        ({"model": "claude-sonnet", "max_tokens": 0, "messages": HELLO}, "max_tokens"),
        ({"model": "claude-sonnet", "max_tokens": 10}, "messages"),
        ({"model": "claude-sonnet", "max_tokens": 10, "messages": []}, "messages"),
        ({"max_tokens": 10, "messages": HELLO}, "model"),
        (
            {"model": "claude-sonnet", "max_tokens": 10, "messages": HELLO, "temperature": 1.5},
            "temperature",
        ),
    ],
)
def test_bad_requests_answer_400_in_anthropic_shape_naming_the_field(
    gateway: AsgiServer, funded: Customer, body: dict, field: str
) -> None:
    response = post(gateway, "messages", body, key=funded.key.secret)
    assert response.status_code == 400
    data = response.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert data["error"]["message"].startswith(f"{field}:")
    assert set(data) == {"type", "error"}
    assert settled(funded) == []


def test_an_image_with_a_broken_data_url_is_refused_naming_the_block(
    client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "not base64!!"}}  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model="gpt-4o", max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
        )  # fmt: skip
    error = raised.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages[0].content[1].source:")
    assert "base64" in error["message"]
    assert fake_openai.requests == []


def test_auth_billing_and_model_errors_come_in_anthropic_shape(
    gateway: AsgiServer, funded: Customer
) -> None:
    with pytest.raises(anthropic.AuthenticationError) as raised:
        anthropic.Anthropic(
            base_url=gateway.base_url, api_key="sk-nx-wrong", max_retries=0
        ).messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": raised.value.body["error"]["message"]},
    }
    broke = customer_for(gateway, credits=0)
    with pytest.raises(anthropic.APIStatusError) as raised:
        anthropic_client(gateway, broke).messages.create(
            model="claude-sonnet", max_tokens=10, messages=HELLO
        )
    assert raised.value.status_code == 402
    assert raised.value.body["error"]["type"] == "billing_error"
    with pytest.raises(anthropic.NotFoundError) as raised:
        anthropic_client(gateway, funded).messages.create(
            model="claude-9", max_tokens=10, messages=HELLO
        )
    assert raised.value.body["error"]["type"] == "not_found_error"
    rate_limited = customer_for(gateway, rpm=1)
    client = anthropic_client(gateway, rate_limited)
    client.messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert raised.value.response.headers["retry-after"]


def test_an_upstream_refusal_is_relayed_with_its_own_message(
    client: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.fail_next(400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 250000 tokens"}})  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
    assert raised.value.body["error"]["message"] == "prompt is too long: 250000 tokens"


# -- count_tokens -------------------------------------------------------------------------


def test_count_tokens_asks_anthropic_for_a_claude_model_and_is_free(
    client: anthropic.Anthropic, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(prompt_tokens=321)
    count = client.messages.count_tokens(model="claude-sonnet", messages=HELLO)
    assert count.input_tokens == 321
    upstream = fake_anthropic.last_request
    assert upstream.path == "/v1/messages/count_tokens"
    assert upstream.json["model"] == "claude-sonnet-4-5"
    [record] = settled(funded)
    assert (record.endpoint, record.charge, record.input_tokens) == (
        "messages.count_tokens", 0, 321,
    )  # fmt: skip
    assert record.ledger_entry is None


def test_count_tokens_estimates_for_other_models(
    client: anthropic.Anthropic, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    count = client.messages.count_tokens(
        model="gpt-4o", system="x" * 40, messages=[{"role": "user", "content": "y" * 400}]
    )
    assert count.input_tokens == (4 + 10) + (4 + 100)  # two messages, 4 chars per token
    assert fake_openai.requests == [] and settled(funded) == []


def test_a_large_image_goes_through_and_an_oversized_body_is_a_413(
    gateway: AsgiServer, client: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    data = base64.b64encode(bytes(3 * 1024 * 1024)).decode()  # 4 MiB of base64
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    client.messages.create(
        model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": [image]}]
    )
    part = fake_openai.last_request.json["messages"][0]["content"][0]
    assert part["image_url"]["url"] == f"data:image/png;base64,{data}"
    response = httpx.post(
        f"{gateway.base_url}/v1/messages",
        content=b"x" * (33 * 1024 * 1024),
        headers={"x-api-key": "anything", "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


# -- Claude models get the caller's request as written -------------------------------------


def test_what_chat_cannot_carry_reaches_a_claude_model_untouched(
    gateway: AsgiServer, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    body = {
        "model": "claude-sonnet",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": [{"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}],
        "messages": HELLO,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    }
    response = httpx.post(
        f"{gateway.base_url}/v1/messages", json=body, timeout=10,
        headers={"x-api-key": funded.key.secret, "anthropic-beta": "prompt-caching-2024-07-31"},
    )  # fmt: skip
    assert response.status_code == 200
    upstream = fake_anthropic.last_request
    assert upstream.json == {**body, "model": "claude-sonnet-4-5"}
    assert upstream.headers["anthropic-beta"] == "prompt-caching-2024-07-31"


def test_a_claude_stream_is_forwarded_event_for_event_and_metered(
    gateway: AsgiServer, funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(
        text="one two three", prompt_tokens=300, cached_tokens=200, completion_tokens=3
    )
    body = {"model": "claude-sonnet", "max_tokens": 50, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.base_url}/v1/messages", json=body,
        headers={"x-api-key": funded.key.secret}, timeout=10,
    ) as response:  # fmt: skip
        text = response.read().decode()
    events = [frame.split("\n", 1)[0] for frame in text.strip().split("\n\n")]
    assert events[0] == "event: message_start" and events[-1] == "event: message_stop"
    assert "event: ping" in events  # even events chat has no use for
    [record] = settled(funded)
    assert (record.input_tokens, record.cached_input_tokens, record.output_tokens) == (300, 200, 3)
    prices = get_catalogue().get("claude-sonnet").prices
    expected = token_charge(prices, input_tokens=300, output_tokens=3, cached_input_tokens=200)
    assert record.charge == expected and not record.estimated
