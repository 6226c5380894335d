"""POST /v1/audio/speech: charged per character, whole or streamed."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from billing.pricing import speech_charge
from gateway import validation
from gateway.calls import (
    BytesDecoder,
    BytesEmitter,
    FixedMeter,
    Meter,
    PassthroughCall,
    metered_at,
)
from gateway.errors import OPENAI
from gateway.relay import Endpoint, Metered, Stream
from gateway.upstream import Attempt
from providers.catalogue import ModelInfo
from providers.redaction import media_type


class SpeechCall(PassthroughCall):
    """Speech, charged per character. With `stream_format: "sse"` (OpenAI's
    speech.audio.delta events) or `stream: true` (nexai's: the audio itself, relayed
    chunk by chunk as the upstream makes it) the answer is streamed."""

    def __init__(self, body: dict[str, Any], characters: int) -> None:
        self.sse = body.get("stream_format") == "sse"
        super().__init__(
            model_id=body.get("model"), path="audio/speech", plan=self._plan,
            body={k: v for k, v in body.items() if k != "stream"},
        )  # fmt: skip
        self.stream = self.sse or body.get("stream") is True
        self.characters = characters

    def _plan(self, model: ModelInfo) -> tuple[int, Meter]:
        self.charge = speech_charge(model.prices, characters=self.characters)

        def meter(raw: bytes, content_type: str) -> Metered:
            if not raw:
                raise ValueError("no audio")
            return metered_at(self.charge, raw, content_type, units=self.characters)

        return self.charge, meter

    def unread(self) -> dict[str, Any]:
        return {"charge": self.charge, "units": self.characters}

    def streamed(self, attempt: Attempt) -> Stream:
        content_type = media_type(
            attempt.response.headers.get("content-type"), "application/octet-stream"
        )
        return Stream(
            BytesDecoder(model=str(self.model_id), sse=self.sse),
            BytesEmitter(sse=self.sse),
            FixedMeter(self.charge, units=self.characters),
            content_type=content_type,
        )


async def parse_speech(request: HttpRequest, key: KeySnapshot) -> SpeechCall:
    body = await validation.json_body(request)
    return SpeechCall(body, validation.speech_body(body))


create = Endpoint("audio.speech", OPENAI, parse_speech, model_types=("speech",))
