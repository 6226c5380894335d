"""The Gemini API (Gemini CLI's dialect) on every chat model, with Google's official
SDK (google-genai) as the client: forwarded as written to a Gemini-kind model,
translated to an OpenAI-kind and an Anthropic-kind one, whole and streamed, charged
exactly the upstream's usage; errors in Google's shape."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import types

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import INPUT_PRICE, OUTPUT_PRICE, Customer, settled
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
