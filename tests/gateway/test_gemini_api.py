"""The Gemini API (Gemini CLI's dialect) on every chat model, with Google's official
SDK (google-genai) as the client: forwarded as written to a Gemini-kind model,
translated to an OpenAI-kind and an Anthropic-kind one, whole and streamed, charged
exactly the upstream's usage; errors in Google's shape."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import ToolCall
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, Customer, customer_for, settled
from tests.servers import AsgiServer

MODELS = ["gemini-flash", "gpt-4o", "claude-sonnet"]


def charge_for(prompt: int, completion: int) -> int:
    return -(-(prompt * INPUT_PRICE + completion * OUTPUT_PRICE) // 1_000_000)


def google_client(
    gateway: AsgiServer, customer: Customer, *, version: str = "v1beta"
) -> genai.Client:
    options = types.HttpOptions(base_url=gateway.base_url, api_version=version)
    return genai.Client(api_key=customer.key.secret, http_options=options)


@pytest.fixture
def client(gateway: AsgiServer, funded: Customer) -> genai.Client:
    return google_client(gateway, funded)


@pytest.fixture
def fakes(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini) -> dict:
    return {"gpt-4o": fake_openai, "claude-sonnet": fake_anthropic, "gemini-flash": fake_gemini}


@pytest.mark.parametrize("model", MODELS)
def test_generate_content_is_answered_and_charged_exactly(
    client: genai.Client, funded: Customer, fakes: dict, model: str
) -> None:
    fakes[model].set_reply(text="Hello, human.", prompt_tokens=1234, completion_tokens=567)
    answer = client.models.generate_content(
        model=model,
        contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=300),
    )
    assert answer.text == "Hello, human."
    assert answer.model_version == model
    assert answer.usage_metadata.prompt_token_count == 1234
    assert answer.usage_metadata.total_token_count == 1234 + 567
    (record,) = settled(funded)
    assert (record.input_tokens, record.output_tokens) == (1234, 567)
    assert record.charge == charge_for(1234, 567)
    assert record.endpoint == "gemini.generate_content"


@pytest.mark.parametrize("model", MODELS)
def test_a_stream_is_answered_and_charged_exactly(
    client: genai.Client, funded: Customer, fakes: dict, model: str
) -> None:
    fakes[model].set_reply(text="one two three four", prompt_tokens=100, completion_tokens=40)
    chunks = list(client.models.generate_content_stream(model=model, contents="Count"))
    assert "".join(c.text or "" for c in chunks) == "one two three four"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 40
    assert {c.model_version for c in chunks} == {model}
    (record,) = settled(funded)
    assert (record.input_tokens, record.output_tokens, record.charge) == (
        100,
        40,
        charge_for(100, 40),
    )


WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
TOOLS = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[WEATHER])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)


def sent_results(fake: object, model: str) -> str:
    """The upstream's last request, as text: the tool results must be in it."""
    return json.dumps(fake.last_request.json)  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_parallel_function_calls_round_trip(
    client: genai.Client, funded: Customer, fakes: dict, model: str, streamed: bool
) -> None:
    """Two calls at once, answered together in the next turn: each result reaches the
    upstream tied to its call (Gemini's thought signature included, which Gemini 3
    refuses the turn without)."""
    fake = fakes[model]
    calls = [
        ToolCall("get_weather", json.dumps({"city": "Paris"})),
        ToolCall("get_weather", json.dumps({"city": "Hanoi"})),
    ]
    fake.queue_reply(tool_calls=calls, prompt_tokens=50, completion_tokens=10)
    fake.set_reply(text="Sunny in both.", prompt_tokens=80, completion_tokens=5)
    user = types.Content(role="user", parts=[types.Part(text="Weather in Paris and Hanoi?")])
    if streamed:
        chunks = list(
            client.models.generate_content_stream(model=model, contents=[user], config=TOOLS)
        )
        parts = [p for c in chunks for p in c.candidates[0].content.parts or [] if p.function_call]
        turn = types.Content(role="model", parts=parts)
    else:
        answer = client.models.generate_content(model=model, contents=[user], config=TOOLS)
        turn = answer.candidates[0].content
        parts = [p for p in turn.parts if p.function_call]
    assert [(p.function_call.name, p.function_call.args) for p in parts] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Hanoi"}),
    ]
    results = [
        types.Part.from_function_response(name="get_weather", response={"output": f"sunny-{i}"})
        for i in range(2)
    ]
    for part, call in zip(results, parts, strict=True):
        part.function_response.id = call.function_call.id
    final = client.models.generate_content(
        model=model, contents=[user, turn, types.Content(role="user", parts=results)], config=TOOLS
    )
    assert final.text == "Sunny in both."
    sent = sent_results(fake, model)
    assert "sunny-0" in sent and "sunny-1" in sent
    records = settled(funded)
    assert [r.charge for r in records] == [charge_for(50, 10), charge_for(80, 5)]


# -- what Gemini CLI and Google's SDKs rely on around the turns ---------------------------

HELLO = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}


def post(gateway: AsgiServer, path: str, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{gateway.base_url}{path}", json=body, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["header", "query"])
def test_the_key_is_taken_from_x_goog_api_key_or_the_key_parameter(
    gateway: AsgiServer, funded: Customer, fake_gemini: FakeGemini, where: str
) -> None:
    secret = funded.key.secret
    options = (
        {"headers": {"x-goog-api-key": secret}}
        if where == "header"
        else {"params": {"key": secret}}
    )
    answer = post(gateway, "/v1beta/models/gemini-flash:generateContent", HELLO, **options)
    assert answer.status_code == 200, answer.text
    assert len(settled(funded)) == 1


@pytest.mark.parametrize(
    ("key", "status", "google_status"),
    [(None, 401, "UNAUTHENTICATED"), ("sk-nx-unknown", 401, "UNAUTHENTICATED")],
)
def test_a_missing_or_unknown_key_is_refused_in_googles_shape(
    gateway: AsgiServer, funded: Customer, fake_gemini: FakeGemini, key: str | None,
    status: int, google_status: str,
) -> None:  # fmt: skip
    headers = {"x-goog-api-key": key} if key else {}
    answer = post(gateway, "/v1beta/models/gemini-flash:generateContent", HELLO, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"]["status"] == google_status
    assert fake_gemini.requests == []


def test_no_credits_left_is_a_402_the_sdk_reports(gateway: AsgiServer, every_kind: None) -> None:
    client = google_client(gateway, customer_for(gateway, credits=1))
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gpt-4o", contents="Hi")
    assert caught.value.code == 402
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["reason"] == "INSUFFICIENT_QUOTA"


@pytest.mark.parametrize("model", ["gemini-flash", "gpt-4o"])
def test_a_stream_without_alt_sse_is_one_json_array(
    gateway: AsgiServer, funded: Customer, fakes: dict, model: str
) -> None:
    """Google's default for streamGenerateContent: a JSON array, written as it comes."""
    fakes[model].set_reply(text="one two three", prompt_tokens=7, completion_tokens=3)
    answer = post(
        gateway, f"/v1beta/models/{model}:streamGenerateContent", HELLO,
        headers={"x-goog-api-key": funded.key.secret},
    )  # fmt: skip
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    chunks = answer.json()
    assert "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"]) == (
        "one two three"
    )
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 7
    (record,) = settled(funded)
    assert record.charge == charge_for(7, 3)


@pytest.mark.parametrize(("model", "counted"), [("gemini-flash", 321), ("gpt-4o", None)])
def test_count_tokens_is_answered_and_never_charged(
    client: genai.Client, funded: Customer, fakes: dict, model: str, counted: int | None
) -> None:
    """A Gemini upstream counts its own tokens; others get nexai's estimate."""
    fakes[model].set_reply(prompt_tokens=321)
    answer = client.models.count_tokens(model=model, contents="Count the tokens in this text.")
    if counted is None:
        assert answer.total_tokens > 0 and fakes[model].requests == []
    else:
        assert answer.total_tokens == counted
        assert fakes[model].last_request.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert all(r.charge == 0 for r in settled(funded))


def test_the_model_list_is_googles_shape_with_the_keys_chat_models(
    client: genai.Client, funded: Customer
) -> None:
    names = [m.name for m in client.models.list()]
    assert names == ["models/claude-sonnet", "models/gemini-flash", "models/gpt-4o"]
    one = client.models.get(model="gpt-4o")
    assert one.name == "models/gpt-4o"
    assert "generateContent" in one.supported_actions


def test_the_sdk_set_to_api_version_v1_is_served_too(
    gateway: AsgiServer, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    client = google_client(gateway, funded, version="v1")
    fake_openai.set_reply(text="Hello from v1.", prompt_tokens=5, completion_tokens=4)
    assert client.models.generate_content(model="gpt-4o", contents="Hi").text == "Hello from v1."
    assert [m.name for m in client.models.list()][-1] == "models/gpt-4o"


def test_settings_a_translated_model_cannot_take_are_named_in_a_header(
    gateway: AsgiServer, funded: Customer, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    """Safety settings and Google's own tools reach a Gemini upstream as written; on
    another upstream they are dropped and the answer says so."""
    body = {
        **HELLO,
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"topK": 40, "temperature": 0.5},
        "tools": [{"googleSearch": {}}],
    }
    headers = {"x-goog-api-key": funded.key.secret}
    native = post(gateway, "/v1beta/models/gemini-flash:generateContent", body, headers=headers)
    assert native.status_code == 200
    sent = fake_gemini.last_request.json
    assert sent["safetySettings"] == body["safetySettings"] and sent["tools"] == body["tools"]
    assert "x-nexai-dropped-settings" not in native.headers
    translated = post(gateway, "/v1beta/models/gpt-4o:generateContent", body, headers=headers)
    assert translated.status_code == 200
    assert translated.headers["x-nexai-dropped-settings"] == "generationConfig.topK, safetySettings"
    assert translated.headers["x-nexai-dropped-tools"] == "googleSearch (tools[0])"
    assert fake_openai.last_request.json["temperature"] == 0.5


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


@pytest.mark.parametrize("model", MODELS)
def test_an_inline_image_reaches_every_kind_of_upstream(
    client: genai.Client, funded: Customer, fakes: dict, model: str
) -> None:
    fakes[model].set_reply(text="A tiny image.", prompt_tokens=900, completion_tokens=4)
    image = types.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png")
    answer = client.models.generate_content(model=model, contents=[image, "What is this?"])
    assert answer.text == "A tiny image."
    assert PNG in json.dumps(fakes[model].last_request.json)
    (record,) = settled(funded)
    assert record.charge == charge_for(900, 4)
