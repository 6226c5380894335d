"""Reading audio uploads for transcription: the form, the format, and how long the
audio is (from a WAV header, or the upstream's answer), for the reservation and the
charge."""

from __future__ import annotations

import posixpath
import wave

import orjson
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from gateway import errors
from gateway.validation import missing, unsupported

# The formats OpenAI's transcription endpoint takes, by file extension.
AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# Reservation for audio whose length the gateway cannot read (anything but WAV): its
# size at 16 kbit/s, below the bitrate of nearly every real recording, so the reserve
# covers the charge the upstream's reported duration will bring.
FLOOR_BYTES_PER_SECOND = 2_000
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


def sniff(head: bytes) -> str | None:
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


def audio_format(upload: UploadedFile) -> str:
    extension = posixpath.splitext(upload.name or "")[1].lower().lstrip(".")
    if not extension:
        upload.seek(0)
        extension = sniff(upload.read(16)) or ""
        upload.seek(0)
    if extension not in AUDIO_FORMATS:
        shown = f"'{extension}'" if extension else "of this file"
        raise errors.invalid(
            f"Unsupported audio format {shown}. Supported formats: {', '.join(AUDIO_FORMATS)}.",
            param="file",
            code="unsupported_file_format",
        )
    return extension


def wav_seconds(upload: UploadedFile) -> float | None:
    """The length of a WAV upload from its header, or None when it is not one."""
    upload.seek(0)
    try:
        with wave.open(upload.file, "rb") as audio:  # type: ignore[arg-type]
            return audio.getnframes() / audio.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError, ValueError):
        return None
    finally:
        upload.seek(0)


def reported_seconds(raw: bytes, content_type: str) -> float | None:
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


def read_form(request: HttpRequest) -> tuple[dict[str, list[str]], UploadedFile | None]:
    form = {name: values for name, values in request.POST.lists()}
    return form, request.FILES.get("file")


def transcription_form(form: dict[str, list[str]], upload: UploadedFile | None) -> UploadedFile:
    if upload is None:
        raise missing("file")
    model = (form.get("model") or [""])[-1]
    if not model:
        raise missing("model")
    response_format = (form.get("response_format") or ["json"])[-1]
    if response_format not in TRANSCRIPTION_FORMATS:
        raise errors.invalid(
            f"Invalid value for 'response_format': expected one of "
            f"{', '.join(TRANSCRIPTION_FORMATS)}.",
            param="response_format",
            code="invalid_value",
        )
    if (form.get("stream") or ["false"])[-1].lower() == "true":
        raise unsupported("stream", "Streaming transcription is not supported yet; omit it.")
    return upload
