"""Chat completions to Anthropic- and Gemini-kind models, translated both ways, with
the openai SDK as the client and fake upstreams over real HTTP; and the same usage
charged the same whatever the dialects on either side."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import ToolCall
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, anthropic_client, settled
from tests.servers import AsgiServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = {"role": "user", "content": "Weather in Paris?"}
INPUT_PRICE, OUTPUT_PRICE = 2_500_000, 10_000_000


def charge_for(prompt: int, completion: int) -> int:
    return -(-(prompt * INPUT_PRICE + completion * OUTPUT_PRICE) // 1_000_000)


def test_a_tool_call_round_trip_with_a_claude_model(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(
        tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="toolu_01")],
        prompt_tokens=90,
        completion_tokens=12,
    )
    first = funded.client.chat.completions.create(
        model="claude-sonnet", messages=[QUESTION], tools=[WEATHER]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name) == ("toolu_01", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (90, 12)
    sent = fake_anthropic.last_request.json
    assert sent["tools"][0]["name"] == "get_weather"
    assert sent["max_tokens"] == 8192  # the model's own limit: the request set none

    fake_anthropic.set_reply(text="Sunny, 24 degrees.", prompt_tokens=120, completion_tokens=6)
    second = funded.client.chat.completions.create(
        model="claude-sonnet",
        tools=[WEATHER],
        messages=[
            QUESTION,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny, 24C"},
        ],
    )
    assert second.choices[0].message.content == "Sunny, 24 degrees."
    assert second.choices[0].finish_reason == "stop"
    turns = fake_anthropic.last_request.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny, 24C"}
    ]
    first_record, second_record = settled(funded)
    assert first_record.charge == charge_for(90, 12)
    assert second_record.charge == charge_for(120, 6)
    # Written in one batch: one ledger entry charged both.
    assert first_record.ledger_entry == second_record.ledger_entry
    assert first_record.ledger_entry.amount == -charge_for(90, 12) - charge_for(120, 6)
    assert first_record.provider == "anthropic"
    assert first_record.upstream_model == "claude-sonnet-4-5"


def test_a_streamed_tool_call_from_a_claude_model_arrives_as_chat_deltas(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(
        text="Checking.",
        tool_calls=[ToolCall("get_weather", '{"city": "Paris"}', id="toolu_02")],
        prompt_tokens=50,
        completion_tokens=7,
    )
    chunks = list(
        funded.client.chat.completions.create(
            model="claude-sonnet", messages=[QUESTION], tools=[WEATHER], stream=True
        )
    )
    assert all(c.choices for c in chunks)  # no usage chunk: the client did not ask
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    fragments = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert text == "Checking."
    assert fragments[0].id == "toolu_02" and fragments[0].function.name == "get_weather"
    assert len(fragments) > 2  # the arguments stream in pieces
    arguments = "".join(f.function.arguments or "" for f in fragments)
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert fake_anthropic.last_request.json["stream"] is True
    [record] = settled(funded)
    assert (record.input_tokens, record.output_tokens) == (50, 7) and not record.estimated


def test_a_stream_from_a_claude_model_gives_usage_when_asked(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.set_reply(text="hi", prompt_tokens=7, completion_tokens=1, cached_tokens=3)
    chunks = list(
        funded.client.chat.completions.create(
            model="claude-sonnet",
            messages=[QUESTION],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and (usage.prompt_tokens, usage.completion_tokens) == (7, 1)
    assert usage.prompt_tokens_details.cached_tokens == 3


def test_gemini_models_answer_chat_completions_streamed_and_not(
    funded: Customer, fake_gemini: FakeGemini
) -> None:
    fake_gemini.set_reply(text="Hello from Gemini", prompt_tokens=15, completion_tokens=4)
    completion = funded.client.chat.completions.create(
        model="gemini-flash", messages=[{"role": "system", "content": "Be kind."}, QUESTION]
    )
    assert completion.choices[0].message.content == "Hello from Gemini"
    upstream = fake_gemini.last_request
    assert upstream.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert upstream.json["systemInstruction"] == {"parts": [{"text": "Be kind."}]}
    chunks = list(
        funded.client.chat.completions.create(
            model="gemini-flash", messages=[QUESTION], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from Gemini"
    assert fake_gemini.last_request.query == {"alt": "sse"}
    records = settled(funded)
    assert [r.charge for r in records] == [charge_for(15, 4)] * 2


def test_the_same_usage_costs_the_same_in_every_dialect_and_upstream(
    gateway: AsgiServer,
    funded: Customer,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    fake_gemini: FakeGemini,
) -> None:
    for fake in (fake_openai, fake_anthropic, fake_gemini):
        fake.set_reply(text="same", prompt_tokens=1_111, completion_tokens=222)
    messages = [QUESTION]
    for model in ("gpt-4o", "claude-sonnet", "gemini-flash"):
        funded.client.chat.completions.create(model=model, messages=messages)
        funded.client.responses.create(model=model, input="Weather in Paris?")
        anthropic_client(gateway, funded).messages.create(
            model=model, max_tokens=300, messages=messages
        )
    records = settled(funded)
    assert len(records) == 9
    assert {(r.input_tokens, r.output_tokens, r.charge) for r in records} == {
        (1_111, 222, charge_for(1_111, 222))
    }


def test_a_broken_data_url_to_a_claude_model_is_a_400_naming_the_part(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64"}}
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.chat.completions.create(
            model="claude-sonnet",
            messages=[{"role": "user", "content": [{"type": "text", "text": "What?"}, image]}],
        )
    assert raised.value.body["param"] == "messages[0].content[1].image_url"
    assert "data URL" in raised.value.body["message"]
    assert fake_anthropic.requests == [] and settled(funded)[0].status == 400


def test_n_above_one_cannot_be_sent_to_a_claude_model(
    funded: Customer, fake_anthropic: FakeAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.chat.completions.create(model="claude-sonnet", messages=[QUESTION], n=2)
    assert raised.value.body["param"] == "n"


def test_images_cross_dialects_as_base64_blocks_and_data_urls(
    gateway: AsgiServer,
    funded: Customer,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    funded.client.chat.completions.create(
        model="claude-sonnet",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What colour?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]}],
    )  # fmt: skip
    blocks = fake_anthropic.last_request.json["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }
    # And an Anthropic-dialect caller's image reaches an OpenAI model as a data URL.
    anthropic_client(gateway, funded).messages.create(
        model="gpt-4o",
        max_tokens=5,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": png}},
            {"type": "text", "text": "What colour?"},
        ]}],
    )  # fmt: skip
    [part, text] = fake_openai.last_request.json["messages"][0]["content"]
    assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}
    assert text == {"type": "text", "text": "What colour?"}


def test_upstream_refusals_are_read_in_each_kinds_own_error_shape(
    funded: Customer, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> None:
    fake_gemini.fail_next(400, {"error": {"code": 400, "message": "Invalid JSON payload: x",
                                          "status": "INVALID_ARGUMENT"}})  # fmt: skip
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.chat.completions.create(model="gemini-flash", messages=[QUESTION])
    assert raised.value.body["message"] == "Invalid JSON payload: x"
    fake_anthropic.fail_next(400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: 99999 > 64000"}})  # fmt: skip
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.chat.completions.create(model="claude-sonnet", messages=[QUESTION])
    assert raised.value.body["message"] == "max_tokens: 99999 > 64000"
