"""POST /v1/audio/speech (charged per character) and /v1/audio/transcriptions
(multipart, at most 50 MiB, enforced by gateway.limits before Django reads the body;
charged per second of audio)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from billing.pricing import speech_charge, transcription_charge
from gateway import audio, errors, validation
from gateway.calls import Meter, PassthroughCall, json_passthrough, metered_at
from gateway.errors import OPENAI
from gateway.relay import Endpoint, Metered
from providers.catalogue import ModelInfo


def _speech_plan(characters: int) -> Callable[[ModelInfo], tuple[int, Meter]]:
    def plan(model: ModelInfo) -> tuple[int, Meter]:
        charge = speech_charge(model.prices, characters=characters)

        def meter(raw: bytes, content_type: str) -> Metered:
            if not raw:
                raise ValueError("no audio")
            return metered_at(charge, raw, content_type, units=characters)

        return charge, meter

    return plan


speech = json_passthrough(
    "audio.speech", "audio/speech", model_type="speech", check=validation.speech_body,
    plan=_speech_plan,
)  # fmt: skip


def _transcription_plan(upload: UploadedFile) -> Callable[[ModelInfo], tuple[int, Meter]]:
    file_seconds = audio.wav_seconds(upload) if audio.audio_format(upload) == "wav" else None
    reserved = math.ceil(
        file_seconds
        if file_seconds is not None
        else max(upload.size or 0, 1) / audio.FLOOR_BYTES_PER_SECOND
    )

    def plan(model: ModelInfo) -> tuple[int, Meter]:
        def meter(raw: bytes, content_type: str) -> Metered:
            seconds = audio.reported_seconds(raw, content_type)
            estimated = False
            if seconds is None:
                seconds = file_seconds
            if seconds is None:
                # Neither the upstream nor the file says how long it is: charge what
                # was reserved for it, marked as an estimate.
                seconds, estimated = reserved, True
            whole = math.ceil(seconds)
            charge = transcription_charge(model.prices, seconds=whole)
            return metered_at(charge, raw, content_type, units=whole, estimated=estimated)

        return transcription_charge(model.prices, seconds=reserved), meter

    return plan


async def parse_transcription(request: HttpRequest, key: KeySnapshot) -> PassthroughCall:
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise errors.invalid(
            "The request must be multipart/form-data with the audio in 'file'.",
            code="invalid_content_type",
        )
    # Parsing writes large uploads to disk: not on the event loop.
    form, upload = await sync_to_async(audio.read_form, thread_sensitive=False)(request)
    upload = audio.transcription_form(form, upload)
    fields = {name: values if len(values) > 1 else values[0] for name, values in form.items()}
    content_type = upload.content_type or "application/octet-stream"

    def files() -> dict[str, Any]:
        upload.seek(0)  # a fallback attempt sends the file again from its start
        return {"file": (upload.name, upload.file, content_type)}

    return PassthroughCall(
        model_id=form["model"][-1], path="audio/transcriptions", files=files, data=fields,
        plan=_transcription_plan(upload),
    )  # fmt: skip


transcriptions = Endpoint(
    "audio.transcriptions", OPENAI, parse_transcription, model_types=("transcription",)
)
