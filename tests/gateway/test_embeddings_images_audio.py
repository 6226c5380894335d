"""Embeddings, image generation, speech and transcription through the gateway, with
the official openai SDK as the client and the fake OpenAI upstream over real HTTP.
Each is charged by its own price rule (DESIGN.md, Money)."""

from __future__ import annotations

import base64
import json
import math
import socket
import struct
import tracemalloc
from collections.abc import Iterator

import httpx
import openai
import pytest

from gateway.models import UsageRecord
from tests.fakes.media import mp3_bytes, png_size, wav_bytes
from tests.fakes.openai import FakeOpenAI
from tests.gateway.conftest import Customer, customer_for, settled
from tests.servers import AsgiServer

MiB = 1024 * 1024


def assert_charged(customer: Customer, record: UsageRecord, charge: int) -> None:
    assert record.charge == charge and record.status == 200
    # The batch's entry for this wallet charged this record with the others written
    # with it, and nothing else.
    entry = record.ledger_entry
    assert entry.amount == -sum(entry.usage_records.values_list("charge", flat=True))


# -- embeddings ---------------------------------------------------------------------------


def test_embeddings_of_a_list_are_charged_on_the_reported_tokens(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(prompt_tokens=1_234)
    result = funded.client.embeddings.create(
        model="text-embedding-3-small", input=["first text", "second text"]
    )
    assert [d.embedding for d in result.data] == [
        FakeOpenAI.embedding_for("first text"),
        FakeOpenAI.embedding_for("second text"),
    ]
    assert result.usage.prompt_tokens == 1_234
    assert fake_openai.last_request.json["model"] == "text-embedding-3-small"
    [record] = settled(funded)
    assert (record.endpoint, record.input_tokens) == ("embeddings", 1_234)
    assert_charged(funded, record, math.ceil(1_234 * 20_000 / 1_000_000))  # 25 credits


def test_embeddings_reserve_the_utf8_bound_not_the_estimate(
    gateway: AsgiServer, every_kind: None, fake_openai: FakeOpenAI
) -> None:
    """Vietnamese runs to more tokens than characters / 4: the reservation must cover
    what the upstream can report, so a balance that covers only the estimate is a 402."""
    text = "Xin chào thế giới, hôm nay trời đẹp quá. " * 40
    estimate = -(-len(text) // 4) * 20_000 // 1_000_000 + 1  # credits at chars / 4
    bound = -(-len(text.encode()) * 20_000 // 1_000_000)  # credits at UTF-8 bytes
    assert estimate < bound
    poor = customer_for(gateway, credits=(estimate + bound) // 2)
    answer = httpx.post(
        f"{poor.client.base_url}embeddings",
        json={"model": "text-embedding-3-small", "input": text},
        headers={"authorization": f"Bearer {poor.key.secret}"},
    )
    assert answer.status_code == 402
    assert fake_openai.requests == []


def test_embeddings_pass_base64_encoding_through(funded: Customer, fake_openai: FakeOpenAI) -> None:
    response = httpx.post(
        f"{funded.client.base_url}embeddings",
        json={"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64"},
        headers={"authorization": f"Bearer {funded.key.secret}"},
    )
    assert response.status_code == 200
    packed = base64.b64decode(response.json()["data"][0]["embedding"])
    assert list(struct.unpack("<16f", packed)) == FakeOpenAI.embedding_for("hello")
    assert fake_openai.last_request.json["encoding_format"] == "base64"


def test_a_chat_model_on_embeddings_is_a_400_that_says_so(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.embeddings.create(model="gpt-4o", input="hello")
    assert raised.value.body["param"] == "model"
    assert "chat model" in raised.value.body["message"]
    assert "embedding" in raised.value.body["message"]
    assert fake_openai.requests == []


# -- images -------------------------------------------------------------------------------


def test_images_decode_to_png_and_are_charged_per_image_by_size(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    result = funded.client.images.generate(
        model="gpt-image-1", prompt="a red square", n=2, size="1536x1024"
    )
    assert len(result.data) == 2
    for image in result.data:
        png = base64.b64decode(image.b64_json)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and png_size(png) == (1536, 1024)
    [record] = settled(funded)
    assert (record.endpoint, record.units) == ("images.generations", 2)
    assert_charged(funded, record, 2 * 60_000)


def test_dall_e_style_b64_json_is_asked_for_and_passed_through(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    result = funded.client.images.generate(
        model="gpt-image-1", prompt="a red square", response_format="b64_json"
    )
    assert png_size(base64.b64decode(result.data[0].b64_json)) == (1024, 1024)
    assert fake_openai.last_request.json["response_format"] == "b64_json"
    [record] = settled(funded)
    assert_charged(funded, record, 40_000)  # no size: the cheapest priced size


def test_a_size_without_a_price_is_refused(funded: Customer, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.images.generate(model="gpt-image-1", prompt="x", size="256x256")
    assert raised.value.body["param"] == "size"
    assert "1024x1024" in raised.value.body["message"]
    assert fake_openai.requests == []


# -- speech -------------------------------------------------------------------------------


def test_speech_returns_the_audio_bytes_and_is_charged_per_character(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    text = "Hello there, this is a test of speech."
    audio = funded.client.audio.speech.create(model="tts-1", voice="alloy", input=text)
    assert audio.content == mp3_bytes(1.0)
    assert audio.response.headers["content-type"] == "audio/mpeg"
    wav = funded.client.audio.speech.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    )
    assert wav.content.startswith(b"RIFF") and wav.response.headers["content-type"] == "audio/wav"
    records = settled(funded)
    assert [(r.endpoint, r.units) for r in records] == [("audio.speech", len(text))] * 2
    for record in records:
        assert_charged(funded, record, math.ceil(len(text) * 15_000_000 / 1_000_000))


def test_speech_streamed_as_sse_events_is_relayed_and_charged_per_character(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    text = "A streamed sentence, read aloud as it is made."
    with funded.client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if "audio" in e)
    assert audio == mp3_bytes(1.0)
    [record] = settled(funded)
    assert (record.endpoint, record.stream, record.units) == ("audio.speech", True, len(text))
    assert_charged(funded, record, math.ceil(len(text) * 15_000_000 / 1_000_000))


def test_speech_with_stream_true_relays_the_audio_chunk_by_chunk(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    text = "Raw audio, chunk by chunk."
    chunks = []
    with httpx.stream(
        "POST",
        f"{funded.client.base_url}audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": text, "stream": True},
        headers={"authorization": f"Bearer {funded.key.secret}"},
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == mp3_bytes(1.0)
    # nexai's `stream` switch is not an OpenAI parameter: the upstream never sees it.
    assert "stream" not in fake_openai.last_request.json
    [record] = settled(funded)
    assert record.stream and record.units == len(text)
    assert_charged(funded, record, math.ceil(len(text) * 15_000_000 / 1_000_000))


def test_a_bad_stream_format_is_a_400_naming_it(funded: Customer, fake_openai: FakeOpenAI) -> None:
    response = httpx.post(
        f"{funded.client.base_url}audio/speech",
        json={"model": "tts-1", "voice": "alloy", "input": "hi", "stream_format": "mp4"},
        headers={"authorization": f"Bearer {funded.key.secret}"},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream_format"
    assert fake_openai.requests == []


# -- transcription --------------------------------------------------------------------------


def test_a_wav_is_transcribed_and_charged_on_the_reported_duration(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="hello world")
    audio = wav_bytes(61.2)
    result = funded.client.audio.transcriptions.create(
        model="whisper-1", file=("hello.wav", audio, "audio/wav"), response_format="verbose_json"
    )
    assert result.text == "hello world" and result.duration == pytest.approx(61.2)
    upstream = fake_openai.last_request
    assert upstream.files["file"] == ("hello.wav", "audio/wav", audio)
    assert upstream.form["model"] == "whisper-1"
    assert upstream.form["response_format"] == "verbose_json"
    [record] = settled(funded)
    assert (record.endpoint, record.units) == ("audio.transcriptions", 62)
    assert_charged(funded, record, math.ceil(62 * 6_000 / 60))  # 6,200 credits
    assert not record.estimated


def test_a_translation_to_english_is_charged_like_a_transcription(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="good morning")
    result = funded.client.audio.translations.create(
        model="whisper-1", file=("bonjour.wav", wav_bytes(4.2), "audio/wav")
    )
    assert result.text == "good morning"
    assert fake_openai.last_request.path == "/v1/audio/translations"
    [record] = settled(funded)
    assert (record.endpoint, record.units) == ("audio.translations", 5)
    assert_charged(funded, record, math.ceil(5 * 6_000 / 60))


def test_without_a_reported_duration_the_wav_itself_is_measured(
    funded: Customer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_reply(text="hi")
    text = funded.client.audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes(2.5)), response_format="text"
    )
    assert text.strip() == "hi"
    [record] = settled(funded)
    assert record.units == 3 and not record.estimated
    assert_charged(funded, record, 300)


def test_an_unsupported_audio_format_is_refused(funded: Customer, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        funded.client.audio.transcriptions.create(
            model="whisper-1", file=("notes.txt", b"just some text", "text/plain")
        )
    assert raised.value.body["param"] == "file"
    assert "Unsupported audio format 'txt'" in raised.value.body["message"]
    assert fake_openai.requests == [] and settled(funded) == []


def _multipart_head(boundary: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()


def _upload(total: int, boundary: str) -> Iterator[bytes]:
    """A multipart body of `total` bytes, made on the fly (one reused 1 MiB block), so
    the test process itself never holds the upload."""
    head, tail = _multipart_head(boundary), f"\r\n--{boundary}--\r\n".encode()
    yield head
    block = bytes(MiB)
    left = total - len(head) - len(tail)
    while left > 0:
        yield block[: min(left, MiB)]
        left -= MiB
    yield tail


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_60_mb_upload_is_refused_without_being_read_into_memory(
    funded: Customer, fake_openai: FakeOpenAI, chunked: bool
) -> None:
    total, boundary = 60 * MiB, "nexai-test-boundary"
    headers = {
        "authorization": f"Bearer {funded.key.secret}",
        "content-type": f"multipart/form-data; boundary={boundary}",
    }
    if not chunked:
        headers["content-length"] = str(total)
    sent = 0

    def counted() -> Iterator[bytes]:
        nonlocal sent
        for block in _upload(total, boundary):
            sent += len(block)
            yield block

    tracemalloc.start()
    try:
        response = httpx.post(
            f"{funded.client.base_url}audio/transcriptions",
            content=counted(), headers=headers, timeout=30,
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")
    assert "50 MiB" in error["message"]
    # Server and client share this process: neither held the upload.
    assert peak < 16 * MiB
    assert sent == total  # the client wrote it all before reading: the 413 still arrived
    assert fake_openai.requests == [] and settled(funded) == []


def test_the_413_comes_from_the_content_length_before_the_body_is_sent(
    gateway: AsgiServer, funded: Customer, fake_openai: FakeOpenAI
) -> None:
    boundary = "nexai-test-boundary"
    head = _multipart_head(boundary)
    request = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {funded.key.secret}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {60 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as conn:
        conn.sendall(request + head)  # and nothing more of the 60 MiB
        answer = b""
        while b"request_too_large" not in answer:
            data = conn.recv(65536)
            assert data, f"connection closed after {answer!r}"
            answer += data
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert fake_openai.requests == []
