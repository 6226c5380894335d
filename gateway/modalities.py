"""/v1/embeddings, /v1/images/generations, /v1/audio/speech and /v1/audio/transcriptions:
checked, admitted with an estimate, forwarded as they are (gateway.passthrough) and
charged by their price rule (billing.pricing)."""

from __future__ import annotations

import math
import posixpath
import time
import wave
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse

from billing.pricing import (
    image_charge,
    image_price,
    speech_charge,
    token_charge,
    transcription_charge,
)
from gateway import errors, metering, passthrough, pipeline, requests
from gateway.auth import authenticate
from gateway.errors import OPENAI, GatewayError
from gateway.passthrough import Metered
from providers.catalogue import ModelInfo

# The formats OpenAI's transcription endpoint takes, by file extension.
AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# Reservation for audio whose length the gateway cannot read (anything but WAV): its
# size at 16 kbit/s, below the bitrate of nearly every real recording, so the reserve
# covers the charge the upstream's reported duration will bring.
FLOOR_BYTES_PER_SECOND = 2_000
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


async def _admit(
    request_id: str,
    key: Any,
    model: ModelInfo,
    endpoint: str,
    estimate: int,
    started: float,
) -> pipeline.Ticket:
    return await pipeline.admit(
        request_id=request_id, key=key, model=model, endpoint=endpoint,
        estimate=max(estimate, 1), stream=False, started=started,
    )  # fmt: skip


def _json_build(path: str, body: dict[str, Any]) -> Any:
    return lambda adapter, route, key: adapter.passthrough_request(
        path, route=route, key=key, body=body
    )


def _missing(name: str) -> GatewayError:
    return errors.invalid(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def _unsupported(name: str, message: str) -> GatewayError:
    return errors.invalid(message, param=name, code="unsupported_parameter")


# -- embeddings ------------------------------------------------------------------------


def _embedding_input_tokens(value: Any) -> int:
    """Tokens in an embeddings input (a string, strings, token ids, lists of token
    ids), as nexai estimates them; raises the 400 for anything else."""
    if isinstance(value, str) and value:
        return metering.tokens_for_text(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return len(value)
        total = 0
        for item in value:
            if isinstance(item, str) and item:
                total += metering.tokens_for_text(item)
            elif isinstance(item, list) and item and all(isinstance(v, int) for v in item):
                total += len(item)
            else:
                break
        else:
            return total
    raise errors.invalid(
        "Invalid 'input': expected a non-empty string, an array of non-empty strings, or "
        "token arrays.",
        param="input",
        code="invalid_value",
    )


def _embeddings_body(body: dict[str, Any]) -> int:
    if "input" not in body:
        raise _missing("input")
    tokens = _embedding_input_tokens(body["input"])
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise errors.invalid(
            "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    requests.positive_int(body, "dimensions")
    return tokens


def _embeddings_meter(model: ModelInfo, estimate: int) -> passthrough.Meter:
    def meter(raw: bytes, content_type: str) -> Metered:
        usage = orjson.loads(raw).get("usage") or {}
        tokens = usage.get("prompt_tokens")
        estimated = not isinstance(tokens, int)
        tokens = estimate if estimated else tokens
        charge = token_charge(model.prices, input_tokens=tokens, output_tokens=0)
        return Metered(charge, {"input_tokens": tokens, "estimated": estimated})

    return meter


async def embeddings(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        tokens = _embeddings_body(body)
        model = await pipeline.model_for(body.get("model"), key, types=("embedding",))
        estimate = token_charge(model.prices, input_tokens=tokens, output_tokens=0)
        ticket = await _admit(request_id, key, model, "embeddings", estimate, started)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    meter = _embeddings_meter(model, tokens)
    return await passthrough.run(ticket, _json_build("embeddings", body), meter)


# -- images ----------------------------------------------------------------------------


def _images_body(body: dict[str, Any]) -> tuple[int, str | None]:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _missing("prompt")
    requests.positive_int(body, "n")
    size = body.get("size")
    if size is not None and not isinstance(size, str):
        raise errors.invalid(
            "Invalid type for 'size': expected a string.", param="size", code="invalid_type"
        )
    if body.get("response_format") not in (None, "url", "b64_json"):
        raise errors.invalid(
            "Invalid value for 'response_format': expected 'url' or 'b64_json'.",
            param="response_format",
            code="invalid_value",
        )
    if body.get("stream") is True:
        raise _unsupported("stream", "Streaming image generation is not supported yet.")
    return body.get("n") or 1, size


def _priced_size(model: ModelInfo, size: str | None) -> None:
    if image_price(model.prices, size) is not None:
        return
    per_image = model.prices.per_image
    sizes = ", ".join(sorted(per_image)) if isinstance(per_image, dict) else ""
    raise errors.invalid(
        f"The model '{model.public_id}' has no price for size '{size}'"
        + (f"; available sizes: {sizes}." if sizes else "."),
        param="size",
        code="invalid_value",
    )


def _images_meter(model: ModelInfo, size: str | None) -> passthrough.Meter:
    def meter(raw: bytes, content_type: str) -> Metered:
        data = orjson.loads(raw)["data"]
        if not isinstance(data, list):
            raise TypeError("data is not a list")
        charge = image_charge(model.prices, size=size, count=len(data))
        return Metered(charge, {"units": len(data)})

    return meter


async def images_generations(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        n, size = _images_body(body)
        model = await pipeline.model_for(body.get("model"), key, types=("image",))
        _priced_size(model, size)
        estimate = image_charge(model.prices, size=size, count=n)
        ticket = await _admit(request_id, key, model, "images.generations", estimate, started)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    meter = _images_meter(model, size)
    return await passthrough.run(ticket, _json_build("images/generations", body), meter)


# -- speech ----------------------------------------------------------------------------


def _speech_body(body: dict[str, Any]) -> int:
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise _missing("input")
    if body.get("stream") is True or body.get("stream_format") == "sse":
        raise _unsupported(
            "stream", "Streaming speech (stream: true) is not supported yet; omit it."
        )
    return len(text)


async def speech(request: HttpRequest) -> HttpResponse:
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        body = requests.json_body(request)
        characters = _speech_body(body)
        model = await pipeline.model_for(body.get("model"), key, types=("speech",))
        charge = speech_charge(model.prices, characters=characters)
        ticket = await _admit(request_id, key, model, "audio.speech", charge, started)
    except GatewayError as err:
        return err.response(OPENAI, request_id)

    def meter(raw: bytes, content_type: str) -> Metered:
        if not raw:
            raise ValueError("no audio")
        return Metered(charge, {"units": characters})

    return await passthrough.run(ticket, _json_build("audio/speech", body), meter)


# -- transcription ---------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    """The audio format from a file's first bytes, for uploads named without one."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def _audio_format(upload: UploadedFile) -> str:
    extension = posixpath.splitext(upload.name or "")[1].lower().lstrip(".")
    if not extension:
        upload.seek(0)
        extension = _sniff(upload.read(16)) or ""
        upload.seek(0)
    if extension not in AUDIO_FORMATS:
        shown = f"'{extension}'" if extension else "of this file"
        raise errors.invalid(
            f"Unsupported audio format {shown}. Supported formats: {', '.join(AUDIO_FORMATS)}.",
            param="file",
            code="unsupported_file_format",
        )
    return extension


def _wav_seconds(upload: UploadedFile) -> float | None:
    """The length of a WAV upload from its header, or None when it is not one."""
    upload.seek(0)
    try:
        with wave.open(upload.file, "rb") as audio:  # type: ignore[arg-type]
            return audio.getnframes() / audio.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError, ValueError):
        return None
    finally:
        upload.seek(0)


def _reported_seconds(raw: bytes, content_type: str) -> float | None:
    """The duration the upstream reported: verbose_json's `duration`, or json's
    `usage.seconds` (usage.type "duration"). Text formats report none."""
    if "json" not in content_type:
        return None
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        return None
    duration = data.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    usage = data.get("usage")
    seconds = usage.get("seconds") if isinstance(usage, dict) else None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    return None


def _transcription_meter(
    model: ModelInfo, file_seconds: float | None, reserved_seconds: int
) -> passthrough.Meter:
    def meter(raw: bytes, content_type: str) -> Metered:
        seconds = _reported_seconds(raw, content_type)
        estimated = False
        if seconds is None:
            seconds = file_seconds
        if seconds is None:
            # Neither the upstream nor the file says how long it is: charge what was
            # reserved for it, marked as an estimate.
            seconds, estimated = reserved_seconds, True
        whole = math.ceil(seconds)
        charge = transcription_charge(model.prices, seconds=whole)
        return Metered(charge, {"units": whole, "estimated": estimated})

    return meter


def _read_form(request: HttpRequest) -> tuple[dict[str, list[str]], UploadedFile | None]:
    form = {name: values for name, values in request.POST.lists()}
    return form, request.FILES.get("file")


def _transcription_form(form: dict[str, list[str]], upload: UploadedFile | None) -> UploadedFile:
    if upload is None:
        raise _missing("file")
    model = (form.get("model") or [""])[-1]
    if not model:
        raise _missing("model")
    response_format = (form.get("response_format") or ["json"])[-1]
    if response_format not in TRANSCRIPTION_FORMATS:
        raise errors.invalid(
            f"Invalid value for 'response_format': expected one of "
            f"{', '.join(TRANSCRIPTION_FORMATS)}.",
            param="response_format",
            code="invalid_value",
        )
    if (form.get("stream") or ["false"])[-1].lower() == "true":
        raise _unsupported("stream", "Streaming transcription is not supported yet; omit it.")
    return upload


async def transcriptions(request: HttpRequest) -> HttpResponse:
    """Multipart upload, at most 50 MiB: the size is enforced before Django reads the
    body, by gateway.limits."""
    request_id, started = pipeline.new_request_id(), time.monotonic()
    try:
        key = await authenticate(request)
        if not (request.content_type or "").startswith("multipart/form-data"):
            raise errors.invalid(
                "The request must be multipart/form-data with the audio in 'file'.",
                code="invalid_content_type",
            )
        # Parsing writes large uploads to disk: not on the event loop.
        form, upload = await sync_to_async(_read_form, thread_sensitive=False)(request)
        upload = _transcription_form(form, upload)
        model = await pipeline.model_for(form["model"][-1], key, types=("transcription",))
        audio_format = _audio_format(upload)
        file_seconds = _wav_seconds(upload) if audio_format == "wav" else None
        reserved = math.ceil(
            file_seconds
            if file_seconds is not None
            else max(upload.size or 0, 1) / FLOOR_BYTES_PER_SECOND
        )
        estimate = transcription_charge(model.prices, seconds=reserved)
        ticket = await _admit(request_id, key, model, "audio.transcriptions", estimate, started)
    except GatewayError as err:
        return err.response(OPENAI, request_id)
    fields = {name: values if len(values) > 1 else values[0] for name, values in form.items()}
    content_type = upload.content_type or "application/octet-stream"

    def build(adapter: Any, route: Any, upstream_key: Any) -> Any:
        upload.seek(0)  # a fallback attempt sends the file again from its start
        files = {"file": (upload.name, upload.file, content_type)}
        return adapter.passthrough_request(
            "audio/transcriptions", route=route, key=upstream_key, files=files, data=fields
        )

    meter = _transcription_meter(model, file_seconds, reserved)
    return await passthrough.run(ticket, build, meter)
