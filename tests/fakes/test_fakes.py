"""The fake upstreams answer in shapes the official SDKs accept, and script failures faithfully.

Every fake is driven through the real SDK (openai, anthropic, stripe) over real loopback
HTTP, so a shape the SDK cannot parse fails here. Gemini has no SDK installed: its shapes
are checked field by field with httpx.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import time
import wave
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import openai
import pytest
import stripe

from tests.fakes import (
    FakeAnthropic,
    FakeAzureOpenAI,
    FakeGemini,
    FakeOpenAI,
    FakeServer,
    FakeStripe,
    checkout_completed_event,
    network_guard,
    signed_webhook,
)
from tests.fakes.media import (
    audio_duration,
    mp3_bytes,
    mp3_duration,
    png_bytes,
    png_size,
    wav_bytes,
    wav_duration,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

USER = [{"role": "user", "content": "hi"}]
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}


# Servers and SDK clients live for the module (as a suite would keep them); each test gets
# them reset, and fails if the fake itself hit a bug.


def _fresh(fake: FakeServer) -> Iterator[FakeServer]:
    fake.reset()
    yield fake
    fake.release()
    assert fake.errors == [], "the fake itself failed:\n" + "\n".join(fake.errors)


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    yield from _fresh(openai_server)  # type: ignore[misc]


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    yield from _fresh(anthropic_server)  # type: ignore[misc]


@pytest.fixture
def fake_gemini(gemini_server: FakeGemini) -> Iterator[FakeGemini]:
    yield from _fresh(gemini_server)  # type: ignore[misc]


@pytest.fixture
def fake_stripe(stripe_server: FakeStripe) -> Iterator[FakeStripe]:
    yield from _fresh(stripe_server)  # type: ignore[misc]


@pytest.fixture(scope="module")
def oai(openai_server: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=openai_server.url("/v1"), api_key=openai_server.expected_key, max_retries=0
    )


@pytest.fixture(scope="module")
def claude(anthropic_server: FakeAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=anthropic_server.base_url, api_key=anthropic_server.expected_key, max_retries=0
    )


@pytest.fixture(scope="module")
def stripe_client(stripe_server: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_fake", base_addresses={"api": stripe_server.base_url}, max_network_retries=0
    )


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def _sse_data(raw: str) -> list[str]:
    return [line[6:] for line in raw.splitlines() if line.startswith("data: ")]


# ---- OpenAI: chat completions -------------------------------------------------------------


def test_chat_completion_is_parsed_by_the_sdk_and_echoes_the_model(fake_openai, oai):
    fake_openai.set_reply(text="Bonjour", prompt_tokens=123, completion_tokens=45, cached_tokens=20)

    completion = oai.chat.completions.create(model="my-model", messages=USER, temperature=0.2)

    assert completion.model == "my-model"
    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (123, 45)
    assert completion.usage.total_tokens == 168
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    request = fake_openai.last_request
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-openai"
    assert request.json["temperature"] == 0.2


def test_chat_stream_ends_with_a_usage_chunk_without_choices_and_done(fake_openai, http):
    fake_openai.set_reply(text="one two three")
    body = {
        "model": "gpt-4o",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    raw = http.post(
        fake_openai.url("/v1/chat/completions"),
        json=body,
        headers={"authorization": "Bearer sk-test-openai"},
    )

    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["transfer-encoding"] == "chunked"
    data = _sse_data(raw.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "one two three"
    )
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3  # one per streamed word by default
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_is_assembled_by_the_sdk(fake_openai, oai):
    fake_openai.set_reply(text="abcdefghij", stream_chunks=4, prompt_tokens=7)

    stream = oai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["abc", "def", "gh", "ij"]
    assert chunks[-1].usage.prompt_tokens == 7
    assert chunks[-1].usage.completion_tokens == 4


def test_chat_stream_tool_call_deltas_accumulate_in_the_sdk(fake_openai, oai):
    fake_openai.set_reply(tool_calls=[WEATHER, {"name": "get_time", "arguments": {}}])

    with oai.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == WEATHER["arguments"]
    assert calls[0].id.startswith("call_")


def test_chat_non_stream_tool_calls_have_null_content(fake_openai, oai):
    fake_openai.set_reply(tool_calls=[WEATHER])

    message = oai.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message

    assert message.content is None
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris", "unit": "c"}


def test_without_usage_the_fake_omits_it_like_some_compatible_upstreams(fake_openai, oai):
    fake_openai.include_usage = False

    completion = oai.chat.completions.create(model="gpt-4o", messages=USER)
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    assert completion.usage is None
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_queued_replies_are_used_once_in_order(fake_openai, oai):
    fake_openai.queue_reply(tool_calls=[WEATHER])
    fake_openai.set_reply(text="It is sunny.")

    first = oai.chat.completions.create(model="gpt-4o", messages=USER)
    second = oai.chat.completions.create(model="gpt-4o", messages=USER)

    assert first.choices[0].finish_reason == "tool_calls"
    assert second.choices[0].message.content == "It is sunny."


# ---- OpenAI: Responses API ----------------------------------------------------------------


def test_responses_non_stream(fake_openai, oai):
    fake_openai.set_reply(text="Hi there", prompt_tokens=11, completion_tokens=3, cached_tokens=5)

    response = oai.responses.create(model="gpt-4.1", input="hi", instructions="Be brief.")

    assert response.output_text == "Hi there"
    assert response.status == "completed"
    assert response.instructions == "Be brief."
    assert (
        response.usage.input_tokens,
        response.usage.output_tokens,
        response.usage.total_tokens,
    ) == (11, 3, 14)
    assert response.usage.input_tokens_details.cached_tokens == 5
    assert oai.responses.retrieve(response.id).id == response.id


def test_responses_stream_is_accumulated_by_the_sdk_helper(fake_openai, oai):
    fake_openai.set_reply(text="Checking the weather.", tool_calls=[WEATHER])

    with oai.responses.stream(model="gpt-4.1", input="weather?") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert (
        "response.output_text.delta" in kinds and "response.function_call_arguments.delta" in kinds
    )
    assert final.output_text == "Checking the weather."
    call = final.output[1]
    assert (call.type, call.name, json.loads(call.arguments)) == (
        "function_call",
        "get_weather",
        WEATHER["arguments"],
    )
    assert final.usage.output_tokens == fake_openai.reply.output_tokens


def test_responses_stream_events_are_named_and_numbered_in_sequence(fake_openai, http):
    body = {"model": "gpt-4.1", "input": "hi", "stream": True}
    raw = http.post(
        fake_openai.url("/v1/responses"),
        json=body,
        headers={"authorization": "Bearer sk-test-openai"},
    )

    lines = [line for line in raw.text.splitlines() if line]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(d) for d in _sse_data(raw.text)]
    assert names == [p["type"] for p in payloads]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert "[DONE]" not in raw.text


def test_responses_length_stop_is_incomplete(fake_openai, oai):
    fake_openai.set_reply(finish_reason="length")

    response = oai.responses.create(model="gpt-4.1", input="hi", max_output_tokens=5)

    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


# ---- OpenAI: embeddings, images, audio, models ---------------------------------------------


def test_embeddings_in_float_and_base64_agree(fake_openai, oai, http):
    as_base64 = oai.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"]
    )  # SDK asks base64
    as_float = oai.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float"
    )

    assert fake_openai.requests[0].json["encoding_format"] == "base64"
    assert [d.index for d in as_base64.data] == [0, 1]
    assert (
        as_base64.data[0].embedding
        == as_float.data[0].embedding
        == FakeOpenAI.embedding_for("alpha")
    )
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens == 10
    raw = http.post(
        fake_openai.url("/v1/embeddings"),
        json={"model": "m", "input": "alpha", "encoding_format": "base64", "dimensions": 4},
        headers={"authorization": "Bearer sk-test-openai"},
    ).json()
    decoded = struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(decoded) == FakeOpenAI.embedding_for("alpha", 4)


def test_images_are_real_pngs_of_the_requested_size(fake_openai, oai, http):
    result = oai.images.generate(model="gpt-image-1", prompt="a red square", n=2, size="64x32")

    assert len(result.data) == 2
    png = base64.b64decode(result.data[0].b64_json)
    assert png_size(png) == (64, 32)
    assert result.usage.input_tokens == 10

    url_result = oai.images.generate(model="dall-e-3", prompt="a red square", size="16x16")
    assert url_result.data[0].revised_prompt == "a red square"
    fetched = http.get(url_result.data[0].url)
    assert fetched.headers["content-type"] == "image/png" and png_size(fetched.content) == (16, 16)


@pytest.mark.parametrize(("fmt", "content_type"), [("mp3", "audio/mpeg"), ("wav", "audio/wav")])
def test_speech_returns_audio_bytes(fake_openai, oai, fmt, content_type):
    fake_openai.speech_seconds = 0.5

    speech = oai.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there", response_format=fmt
    )

    assert speech.response.headers["content-type"] == content_type
    assert audio_duration(speech.content) == pytest.approx(0.5, abs=0.03)


def test_transcription_reads_the_duration_of_the_uploaded_wav(fake_openai, oai):
    fake_openai.set_reply(text="hello world")
    audio = ("clip.wav", wav_bytes(2.5), "audio/wav")

    plain = oai.audio.transcriptions.create(model="whisper-1", file=audio)
    verbose = oai.audio.transcriptions.create(
        model="whisper-1", file=audio, response_format="verbose_json"
    )
    by_tokens = oai.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio)
    text = oai.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")

    assert plain.text == "hello world"
    assert (plain.usage.type, plain.usage.seconds) == ("duration", 2.5)
    assert (verbose.duration, verbose.language, verbose.segments[0].end) == (2.5, "english", 2.5)
    assert (by_tokens.usage.type, by_tokens.usage.input_tokens) == ("tokens", 10)
    assert text.strip() == "hello world"
    upload = fake_openai.requests[0]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert upload.form["model"] == "whisper-1" and upload.files["file"][0] == "clip.wav"


def test_transcription_of_an_mp3(fake_openai, oai):
    result = oai.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", mp3_bytes(3.0), "audio/mpeg")
    )

    assert result.usage.seconds == pytest.approx(3.0, abs=0.03)


def test_models_list_and_retrieve(fake_openai, oai):
    assert "gpt-4o" in [m.id for m in oai.models.list()]
    assert oai.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")


# ---- OpenAI: auth and scripted failures ---------------------------------------------------


def test_wrong_or_missing_key_gets_openais_401(fake_openai, http):
    bad = openai.OpenAI(base_url=fake_openai.url("/v1"), api_key="sk-wrong-key-1234", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.code == "invalid_api_key"
    assert "sk-" in caught.value.message

    missing = http.post(
        fake_openai.url("/v1/chat/completions"), json={"model": "m", "messages": USER}
    )
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"


def test_fail_next_answers_with_the_real_error_shape_then_recovers(fake_openai, oai):
    fake_openai.fail_next(429, headers={"retry-after": "7"})
    fake_openai.fail_next(503)

    with pytest.raises(openai.RateLimitError) as rate_limited:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.InternalServerError) as unavailable:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    ok = oai.chat.completions.create(model="gpt-4o", messages=USER)

    assert rate_limited.value.code == "rate_limit_exceeded"
    assert rate_limited.value.response.headers["retry-after"] == "7"
    assert unavailable.value.status_code == 503
    assert unavailable.value.type == "server_error"
    assert ok.choices[0].message.content
    assert [r.status for r in fake_openai.requests] == [429, 503, 200]


def test_fail_next_can_target_a_path_or_a_key(fake_openai, oai):
    fake_openai.valid_keys.add("sk-second")
    fake_openai.fail_next(500, {"error": {"message": "custom"}}, path="/embeddings")
    fake_openai.fail_next(429, key="sk-second")

    assert oai.chat.completions.create(model="m", messages=USER).choices
    with pytest.raises(openai.InternalServerError, match="custom"):
        oai.embeddings.create(model="m", input="x")
    second = openai.OpenAI(base_url=fake_openai.url("/v1"), api_key="sk-second", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        second.chat.completions.create(model="m", messages=USER)


# ---- streams cut deterministically --------------------------------------------------------


def test_a_paused_stream_continues_after_release(fake_openai, oai):
    fake_openai.set_reply(text="a b c d")
    fake_openai.pause_after_chunks = 2

    stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    received = [next(stream).choices[0].delta.content for _ in range(3)]  # role chunk + 2 pieces
    fake_openai.wait_paused()
    assert fake_openai.last_request.content_chunks_sent == 2
    fake_openai.release()
    rest = [c.choices[0].delta.content for c in stream]

    assert "".join(received + [r or "" for r in rest]) == "a b c d"
    assert fake_openai.last_request.paused and not fake_openai.last_request.stream_aborted


def test_a_client_leaving_a_paused_stream_is_detected(fake_openai, oai):
    fake_openai.pause_after_chunks = 1

    stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    next(stream)
    next(stream)
    fake_openai.wait_paused()
    stream.close()

    assert fake_openai.client_disconnected.wait(5)
    request = fake_openai.last_request
    assert request.stream_aborted and request.client_disconnected
    assert request.content_chunks_sent == 1
    assert fake_openai.aborted_streams == [request]


def test_fail_mid_stream_cuts_the_connection_after_k_chunks(fake_openai, oai):
    fake_openai.set_reply(text="a b c d")
    fake_openai.fail_mid_stream_after = 2

    pieces = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
            pieces.append(chunk.choices[0].delta.content)

    assert "".join(p for p in pieces if p) == "a b "
    assert fake_openai.last_request.dropped


def test_error_mid_stream_sends_the_providers_error_event(fake_openai, oai):
    fake_openai.error_mid_stream_after = 1

    with pytest.raises(openai.APIError, match="server had an error"):
        list(oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True))


def test_hang_next_times_out_the_client_then_serves_normally(fake_openai):
    fake_openai.hang_next()
    impatient = openai.OpenAI(
        base_url=fake_openai.url("/v1"), api_key="sk-test-openai", max_retries=0, timeout=0.3
    )

    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="gpt-4o", messages=USER)
    fake_openai.wait_disconnects(1)

    assert fake_openai.requests[0].hung and fake_openai.requests[0].client_disconnected
    assert impatient.chat.completions.create(model="gpt-4o", messages=USER).choices


def test_a_hung_request_answers_when_released(fake_openai, oai):
    fake_openai.hang_next()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(oai.chat.completions.create, model="gpt-4o", messages=USER)
        fake_openai.wait_hanging()
        assert not future.done()
        fake_openai.release()
        assert future.result(timeout=5).choices[0].message.content


def test_stop_is_not_blocked_by_a_hung_request():
    fake = FakeOpenAI().start()
    fake.hang_next()
    client = openai.OpenAI(
        base_url=fake.url("/v1"), api_key=fake.expected_key, max_retries=0, timeout=30
    )
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.chat.completions.create, model="gpt-4o", messages=USER)
        fake.wait_hanging()
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(openai.APIConnectionError):
            future.result(timeout=5)


def test_forty_concurrent_streams_are_held_together_then_finish(fake_openai, oai):
    fake_openai.set_reply(text="x y z")
    fake_openai.pause_after_chunks = 1

    def consume() -> str:
        stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream)

    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(consume) for _ in range(40)]
        fake_openai.wait_paused(40)
        fake_openai.release()
        assert [f.result(timeout=10) for f in futures] == ["x y z"] * 40


def test_many_concurrent_async_requests(fake_openai):
    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(
            base_url=fake_openai.url("/v1"), api_key="sk-test-openai", max_retries=0
        )
        async with client:
            results = await asyncio.gather(
                *(client.chat.completions.create(model=f"m{i}", messages=USER) for i in range(60))
            )
        return [r.model for r in results]

    assert asyncio.run(burst()) == [f"m{i}" for i in range(60)]
    assert len(fake_openai.wait_for_requests(60)) == 60


# ---- Azure OpenAI -------------------------------------------------------------------------


def test_azure_deployment_routes_with_api_key_and_version(http):
    with FakeAzureOpenAI(deployments={"prod-gpt4o": "gpt-4o-2024-11-20"}) as fake:
        client = openai.AzureOpenAI(
            azure_endpoint=fake.base_url,
            api_key="azure-test-key",
            api_version="2024-10-21",
            max_retries=0,
        )
        completion = client.chat.completions.create(model="prod-gpt4o", messages=USER)
        chunks = list(
            client.chat.completions.create(
                model="prod-gpt4o",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        embedded = client.embeddings.create(model="prod-gpt4o", input="x", encoding_format="float")

        assert completion.model == "gpt-4o-2024-11-20"
        assert chunks[0].choices == [] and chunks[0].model == ""  # Azure's prompt-filter chunk
        assert chunks[-1].usage.total_tokens == 15
        assert embedded.data[0].embedding == FakeOpenAI.embedding_for("x")
        request = fake.requests[0]
        assert request.path == "/openai/deployments/prod-gpt4o/chat/completions"
        assert (
            request.query["api-version"] == "2024-10-21"
            and request.headers["api-key"] == "azure-test-key"
        )

        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(model="other", messages=USER)
        assert unknown.value.body["code"] == "DeploymentNotFound"
        no_version = http.post(
            fake.url("/openai/deployments/prod-gpt4o/chat/completions"),
            json={"messages": USER},
            headers={"api-key": "azure-test-key"},
        )
        assert no_version.status_code == 404
        bad_key = openai.AzureOpenAI(
            azure_endpoint=fake.base_url, api_key="nope", api_version="2024-10-21", max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            bad_key.chat.completions.create(model="prod-gpt4o", messages=USER)
        assert fake.errors == []


# ---- Anthropic ----------------------------------------------------------------------------


def test_anthropic_message_reports_cache_usage_the_anthropic_way(fake_anthropic, claude):
    fake_anthropic.set_reply(
        text="Hi!", prompt_tokens=100, cached_tokens=30, cache_write_tokens=10, completion_tokens=9
    )

    message = claude.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=USER)

    assert message.content[0].text == "Hi!"
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (
        usage.input_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    ) == (60, 30, 10)
    assert usage.output_tokens == 9
    assert fake_anthropic.last_request.headers["anthropic-version"]


def test_anthropic_stream_helper_assembles_text_and_tool_use(fake_anthropic, claude):
    fake_anthropic.set_reply(text="Let me look.", tool_calls=[WEATHER], prompt_tokens=20)

    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=USER) as stream:
        for _ in stream:
            pass
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    text, tool = final.content
    assert text.text == "Let me look."
    assert (tool.type, tool.name, tool.input) == ("tool_use", "get_weather", WEATHER["arguments"])
    assert tool.id.startswith("toolu_")
    assert final.usage.input_tokens == 20
    assert final.usage.output_tokens == fake_anthropic.reply.output_tokens


def test_anthropic_stream_has_the_exact_event_sequence(fake_anthropic, http):
    fake_anthropic.set_reply(text="a b", tool_calls=[WEATHER])
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": USER, "stream": True}

    raw = http.post(fake_anthropic.url("/v1/messages"), json=body, headers=headers).text

    names = [line[7:] for line in raw.splitlines() if line.startswith("event: ")]
    assert names == (
        ["message_start", "content_block_start", "ping"]
        + ["content_block_delta"] * 2
        + ["content_block_stop", "content_block_start"]
        + ["content_block_delta"] * 3
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    events = [json.loads(d) for d in _sse_data(raw)]
    assert [e["type"] for e in events] == names
    assert events[0]["message"]["usage"]["output_tokens"] == 1
    assert events[-2]["usage"]["output_tokens"] == 5
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_count_tokens(fake_anthropic, claude):
    fake_anthropic.set_reply(prompt_tokens=321)

    assert (
        claude.messages.count_tokens(model="claude-sonnet-4-5", messages=USER).input_tokens == 321
    )


def test_anthropic_errors_have_the_anthropic_shape(fake_anthropic, claude, http):
    fake_anthropic.fail_next(529)
    fake_anthropic.fail_next(429)

    with pytest.raises(anthropic.APIStatusError) as overloaded:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=USER)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=USER)
    bad = anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=USER)

    assert overloaded.value.status_code == 529
    assert overloaded.value.body["type"] == "error"
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    no_version = http.post(
        fake_anthropic.url("/v1/messages"), json={}, headers={"x-api-key": "sk-ant-test"}
    )
    assert no_version.status_code == 400
    assert no_version.json()["error"]["message"] == "anthropic-version: header is required"
    no_max_tokens = http.post(
        fake_anthropic.url("/v1/messages"),
        json={"model": "claude-sonnet-4-5", "messages": USER},
        headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
    )
    assert no_max_tokens.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


def test_anthropic_error_mid_stream_reaches_the_sdk(fake_anthropic, claude):
    fake_anthropic.error_mid_stream_after = 1

    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        claude.messages.stream(model="claude-sonnet-4-5", max_tokens=8, messages=USER) as stream,
    ):
        for _ in stream:
            pass


def test_anthropic_client_leaving_a_paused_stream_is_detected(fake_anthropic, claude):
    fake_anthropic.pause_after_chunks = 0

    stream = claude.messages.create(
        model="claude-sonnet-4-5", max_tokens=8, messages=USER, stream=True
    )
    assert next(iter(stream)).type == "message_start"
    fake_anthropic.wait_paused()
    stream.close()

    fake_anthropic.wait_disconnects()
    assert fake_anthropic.last_request.stream_aborted


# ---- Gemini -------------------------------------------------------------------------------


def _gemini_post(
    http: httpx.Client,
    fake: FakeGemini,
    path: str,
    body: dict,
    key: str | None = "AIza-test-gemini",
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return http.post(fake.url(path), json=body, headers=headers)


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_gemini_generate_content(fake_gemini, http):
    fake_gemini.set_reply(
        text="Hello", prompt_tokens=12, completion_tokens=4, cached_tokens=2, reasoning_tokens=1
    )

    data = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_BODY
    ).json()

    candidate = data["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "Hello"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    usage = data["usageMetadata"]
    assert (
        usage["promptTokenCount"],
        usage["candidatesTokenCount"],
        usage["thoughtsTokenCount"],
    ) == (12, 3, 1)
    assert usage["totalTokenCount"] == 16 and usage["cachedContentTokenCount"] == 2
    assert data["modelVersion"] == "gemini-2.5-flash"


def test_gemini_function_calls_and_key_in_query(fake_gemini, http):
    fake_gemini.set_reply(tool_calls=[WEATHER])

    response = http.post(
        fake_gemini.url("/v1beta/models/gemini-2.5-pro:generateContent?key=AIza-test-gemini"),
        json=GEMINI_BODY,
    )

    (part,) = response.json()["candidates"][0]["content"]["parts"]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}}
    assert part["thoughtSignature"] in fake_gemini.signatures


def test_gemini_refuses_a_function_call_without_its_thought_signature(fake_gemini, http):
    """As Gemini 3 does: the signature it gave must come back with the call."""
    url = fake_gemini.url("/v1beta/models/gemini-2.5-pro:generateContent?key=AIza-test-gemini")
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    answer = {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}

    def history(part: dict) -> dict:
        turns = [GEMINI_BODY["contents"][0], {"role": "model", "parts": [part]}]
        return {"contents": [*turns, {"role": "user", "parts": [answer]}]}

    unsigned = http.post(url, json=history(call))
    forged = http.post(url, json=history({**call, "thoughtSignature": "bm90IGdpdmVu"}))
    placeholder = {**call, "thoughtSignature": "skip_thought_signature_validator"}

    assert unsigned.status_code == forged.status_code == 400
    assert "missing a `thought_signature`" in unsigned.json()["error"]["message"]
    assert http.post(url, json=history(placeholder)).status_code == 200


def test_gemini_sse_stream(fake_gemini, http):
    fake_gemini.set_reply(text="one two three", prompt_tokens=5)

    raw = _gemini_post(
        http,
        fake_gemini,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        GEMINI_BODY,
    )

    assert raw.headers["content-type"] == "text/event-stream"
    assert raw.content.endswith(b"\r\n\r\n") and b"[DONE]" not in raw.content
    events = [json.loads(d) for d in _sse_data(raw.text)]
    assert (
        "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
        == "one two three"
    )
    assert "finishReason" not in events[0]["candidates"][0]
    assert "candidatesTokenCount" not in events[0]["usageMetadata"]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 3


def test_gemini_stream_without_sse_is_a_json_array(fake_gemini, http):
    raw = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", GEMINI_BODY
    )

    chunks = raw.json()
    assert isinstance(chunks, list) and len(chunks) == len(fake_gemini.reply.text_chunks())


def test_gemini_auth_errors(fake_gemini, http):
    missing = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_BODY, key=None
    )
    wrong = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_BODY, key="bad"
    )
    fake_gemini.fail_next(429)
    limited = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_BODY
    )

    assert (missing.status_code, missing.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert (wrong.status_code, wrong.json()["error"]["details"][0]["reason"]) == (
        400,
        "API_KEY_INVALID",
    )
    assert limited.json() == {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
        }
    }


def test_gemini_embeddings_and_count_tokens(fake_gemini, http):
    content = {"parts": [{"text": "alpha"}]}

    single = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-embedding-001:embedContent", {"content": content}
    )
    batch = _gemini_post(
        http,
        fake_gemini,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        {"requests": [{"model": "models/gemini-embedding-001", "content": content}] * 2},
    )
    counted = _gemini_post(
        http, fake_gemini, "/v1beta/models/gemini-2.5-flash:countTokens", GEMINI_BODY
    )

    assert single.json()["embedding"]["values"] == FakeOpenAI.embedding_for("alpha")
    assert len(batch.json()["embeddings"]) == 2
    assert counted.json()["totalTokens"] == 10


# ---- Stripe -------------------------------------------------------------------------------

CHECKOUT_PARAMS = {
    "mode": "payment",
    "client_reference_id": "user-7",
    "metadata": {"user_id": "7", "credits": "5000000"},
    "line_items": [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": 500,
                "product_data": {"name": "Credits"},
            },
            "quantity": 2,
        }
    ],
    "success_url": "http://127.0.0.1:8000/billing/success?session_id={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://127.0.0.1:8000/billing",
}


def test_stripe_checkout_session_through_the_sdk_client(fake_stripe, http, stripe_client):
    client = stripe_client

    session = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)

    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert (session.amount_total, session.currency, session.status) == (1000, "usd", "open")
    assert session.client_reference_id == "user-7"
    assert session.metadata.to_dict() == {"user_id": "7", "credits": "5000000"}
    assert session.url == fake_stripe.url(f"/c/pay/{session.id}")
    request = fake_stripe.last_request
    assert http.get(session.url).status_code == 200
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form["line_items[0][price_data][unit_amount]"] == "500"
    assert fake_stripe.created_params[0]["success_url"] == CHECKOUT_PARAMS["success_url"]
    assert client.v1.checkout.sessions.retrieve(session.id).amount_total == 1000


def test_stripe_global_api_base_and_idempotent_replay(fake_stripe, monkeypatch):
    monkeypatch.setattr(stripe, "api_base", fake_stripe.base_url)
    monkeypatch.setattr(stripe, "api_key", "sk_test_fake")
    monkeypatch.setattr(stripe, "max_network_retries", 0)

    first = stripe.checkout.Session.create(**CHECKOUT_PARAMS, idempotency_key="topup-1")
    again = stripe.checkout.Session.create(**CHECKOUT_PARAMS, idempotency_key="topup-1")

    assert first.id == again.id
    assert len(fake_stripe.sessions) == 1


def test_stripe_errors(fake_stripe, stripe_client):
    client = stripe_client
    bad_key = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": fake_stripe.base_url}, max_network_retries=0
    )

    with pytest.raises(stripe.InvalidRequestError) as missing_mode:
        client.v1.checkout.sessions.create(params={"success_url": "http://127.0.0.1/"})
    with pytest.raises(stripe.AuthenticationError):
        bad_key.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
    with pytest.raises(stripe.InvalidRequestError, match=r"No such checkout\.session"):
        client.v1.checkout.sessions.retrieve("cs_test_missing")

    assert missing_mode.value.param == "mode"


def test_signed_webhooks_verify_with_the_sdk_and_tampering_is_rejected():
    event = checkout_completed_event(
        "cs_test_abc", 1000, "user-7", {"user_id": "7"}, event_id="evt_1"
    )
    body, header = signed_webhook(event, "whsec_test")

    verified = stripe.Webhook.construct_event(body, header, "whsec_test")

    assert (verified.id, verified.type) == ("evt_1", "checkout.session.completed")
    session = verified.data.object
    assert (session.amount_total, session.payment_status, session.status) == (
        1000,
        "paid",
        "complete",
    )
    assert session.client_reference_id == "user-7" and session.metadata["user_id"] == "7"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace(b"1000", b"9000"), header, "whsec_test")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_other")
    stale_body, stale_header = signed_webhook(
        event, "whsec_test", timestamp=int(time.time()) - 3600
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale_body, stale_header, "whsec_test")


def test_completing_a_created_session_gives_its_completed_event(fake_stripe, stripe_client):
    client = stripe_client
    session = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)

    event = fake_stripe.complete_session(session.id, event_id="evt_topup")

    paid = event["data"]["object"]
    assert (paid["id"], paid["amount_total"], paid["client_reference_id"]) == (
        session.id,
        1000,
        "user-7",
    )
    assert paid["metadata"] == {"user_id": "7", "credits": "5000000"} and paid["url"] is None
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


# ---- media --------------------------------------------------------------------------------


def test_media_generators_make_valid_files():
    png = png_bytes(3, 2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png_size(png) == (3, 2)
    idat_len = struct.unpack(">I", png[33:37])[0]
    assert len(zlib.decompress(png[41 : 41 + idat_len])) == 2 * (1 + 3 * 3)

    wav = wav_bytes(1.25, sample_rate=16000)
    assert wav_duration(wav) == 1.25
    with wave.open(__import__("io").BytesIO(wav)) as parsed:
        assert (parsed.getnchannels(), parsed.getsampwidth()) == (1, 2)

    assert mp3_duration(mp3_bytes(2.0)) == pytest.approx(2.0, abs=0.03)
    assert audio_duration(b"not audio") is None


# ---- network guard ------------------------------------------------------------------------


def test_network_guard_refuses_everything_but_loopback(fake_openai, oai):
    was_installed = network_guard.is_installed()
    network_guard.install()
    try:
        with pytest.raises(RuntimeError, match="tests may only reach loopback"):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        with socket.socket() as sock, pytest.raises(RuntimeError, match="loopback"):
            sock.connect_ex(("198.51.100.7", 80))
        with pytest.raises(RuntimeError, match="loopback"):
            socket.getaddrinfo("api.openai.com", 443)
        with pytest.raises(
            RuntimeError, match=r"'api\.openai\.com', 443"
        ):  # not swallowed by the SDK
            openai.OpenAI(api_key="sk-x", max_retries=0).models.list()
        assert oai.chat.completions.create(model="gpt-4o", messages=USER).choices
        with socket.create_connection(("localhost", fake_openai.port)):
            pass
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()  # uvicorn's default loop="auto" would bypass the patches
        assert type(loop).__module__.startswith("asyncio")
        loop.close()
    finally:
        if not was_installed:
            network_guard.uninstall()
