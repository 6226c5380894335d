"""POST /v1/audio/transcriptions and /v1/audio/translations: multipart, at most 50 MiB
(enforced by gateway.limits before Django reads the body); charged per second."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from billing.pricing import transcription_charge
from gateway import audio, errors
from gateway.calls import Meter, PassthroughCall, metered_at
from gateway.errors import OPENAI
from gateway.relay import Endpoint, Metered, Parse
from providers.catalogue import ModelInfo


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


def _upload(path: str) -> Parse:
    """Transcriptions and translations: the same multipart upload, the same price."""

    async def parse(request: HttpRequest, key: KeySnapshot) -> PassthroughCall:
        return await _parse_upload(request, path)

    return parse


async def _parse_upload(request: HttpRequest, path: str) -> PassthroughCall:
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
        model_id=form["model"][-1], path=path, files=files, data=fields,
        plan=_transcription_plan(upload),
    )  # fmt: skip


create = Endpoint(
    "audio.transcriptions", OPENAI, _upload("audio/transcriptions"), model_types=("transcription",)
)
# Speech in any language to English text: a transcription model, priced the same.
translations = Endpoint(
    "audio.translations", OPENAI, _upload("audio/translations"), model_types=("transcription",)
)
