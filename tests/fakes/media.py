"""Tiny but valid media files made in code: PNG images, WAV and MP3 audio.

The fakes return these from image and speech endpoints and read durations back from
uploaded audio, so tests never need binary fixtures.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import wave
import zlib

# MPEG-1 Layer III tables (kbps; Hz): enough to walk the frames of a CBR or VBR file.
_MP3_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_SAMPLE_RATES = (44100, 48000, 32000)
_MP3_SAMPLES_PER_FRAME = 1152


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.lru_cache(maxsize=16)
def png_bytes(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A solid-colour 8-bit RGB PNG of the given size (cached: big sizes cost a few ms once)."""
    row = b"\x00" + bytes(rgb) * width  # filter byte 0 (None) then the pixels
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 6))
        + _png_chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def wav_bytes(seconds: float = 1.0, *, sample_rate: int = 8000, tone_hz: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of exactly round(seconds * sample_rate) frames of a sine tone."""
    frames = round(seconds * sample_rate)
    step = 2 * math.pi * tone_hz / sample_rate
    samples = struct.pack(f"<{frames}h", *(int(8000 * math.sin(i * step)) for i in range(frames)))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples)
    return buffer.getvalue()


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def mp3_bytes(seconds: float = 1.0) -> bytes:
    """Silent MPEG-1 Layer III, 128 kbit/s, 44.1 kHz mono: whole frames covering `seconds`.

    An all-zero side-info block with part2_3_length 0 decodes as silence, so the file is
    valid for any decoder; the duration is a whole number of 1152-sample frames.
    """
    frames = math.ceil(seconds * 44100 / _MP3_SAMPLES_PER_FRAME)
    header = bytes((0xFF, 0xFB, 0x90, 0xC0))  # sync, MPEG-1, layer III, no CRC; 128k 44.1k; mono
    frame_len = 144 * 128000 // 44100  # 417 bytes, no padding
    return (header + bytes(frame_len - 4)) * frames


def mp3_duration(data: bytes) -> float:
    """Duration of an MPEG-1 Layer III stream, by walking its frame headers."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # skip an ID3v2 tag (sync-safe size)
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        pos = 10 + size
    seconds = 0.0
    frames = 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or (b1 & 0xFE) != 0xFA:  # MPEG-1 layer III sync
            break
        bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
        if not 0 < bitrate_index < 15 or rate_index == 3:
            break
        sample_rate = _MP3_SAMPLE_RATES[rate_index]
        pos += 144 * _MP3_BITRATES[bitrate_index] * 1000 // sample_rate + padding
        seconds += _MP3_SAMPLES_PER_FRAME / sample_rate
        frames += 1
    if not frames:
        raise ValueError("not an MPEG-1 layer III stream")
    return seconds


def audio_duration(data: bytes) -> float | None:
    """Seconds of audio in a WAV or MP3 file, or None when the format is not recognised."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            return wav_duration(data)
        except (wave.Error, EOFError):
            return None
    try:
        return mp3_duration(data)
    except (ValueError, IndexError):
        return None
