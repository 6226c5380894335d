"""Upper bounds on the tokens a piece of media in a prompt can cost, from each
provider's published formula. Pure functions over bytes and numbers.

With the pixel size known (read from a PNG, GIF, WebP or JPEG header in a data URL),
an image is bounded by the largest of the published formulas that may apply; without
it (an http URL), by the provider's maximum per image:

- OpenAI (high detail): fit in 2048x2048, shortest side down to 768, then 170 tokens
  per 512px tile + 85 (gpt-4o-mini: 5,667 per tile + 2,833, priced to match); the
  patch models (gpt-4.1-mini/nano, o4-mini): 32px patches, at most 1,536, times at most
  2.46. At most 8 tiles, so 1,445 tokens (48,169 on gpt-4o-mini), or 3,779 by patches.
- Anthropic: width * height / 750, images scaled down to about 1.15 megapixels
  (~1,600 tokens) on most models, up to 2,576px on the long edge (4,784 tokens) on the
  newest; we take 4,784 as the maximum.
- Gemini: 258 tokens per image up to 384x384, else 258 per 768x768 tile, images
  scaled to fit 3072x3072 (16 tiles: 4,128 tokens); Gemini 3 takes up to 1,120 per
  image at high media resolution.
- Other OpenAI-compatible upstreams (Qwen-VL: one token per 28x28 pixels, up to
  16,384 per image; xAI; OpenRouter to any of the above): the largest of all.

Audio is bounded at 32 tokens a second (Gemini's rate, the highest published) and video
at 300 a second (Gemini: 258 per frame at 1 fps plus 32 of audio); without a duration
in the file, the length is bounded by the bytes at a low bitrate. A PDF is an
allowance, not a proof: PDF_PAGE_TOKENS per page counted in the file.
"""

from __future__ import annotations

import binascii
import re
import struct

ANTHROPIC_IMAGE_MAX = 4_784
GEMINI_IMAGE_MAX = 4_128
GEMINI_FIXED_IMAGE = 1_120
OPENAI_TILE_MAX = 1_445
OPENAI_MINI_TILE_MAX = 48_169
OPENAI_PATCH_MAX = 3_779
COMPATIBLE_IMAGE_MAX = 16_384

AUDIO_TOKENS_PER_SECOND = 32
VIDEO_TOKENS_PER_SECOND = 300
AUDIO_MIN_BYTES_PER_SECOND = 750  # 6 kbit/s: below every speech codec's usual rate
VIDEO_MIN_BYTES_PER_SECOND = 2_000  # 16 kbit/s
PDF_PAGE_TOKENS = 8_000  # one page's image plus a dense page of text, generously
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

# How much base64 to decode to find an image's size: PNG, GIF and WebP say it in the
# first bytes; a JPEG after its metadata segments, which are rarely larger than this.
_SNIFF_BASE64 = 262_144


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        # SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


def decode_prefix(b64: str, limit: int = _SNIFF_BASE64) -> bytes:
    """The first bytes of base64 data (enough to read a header), or b"" if invalid."""
    head = b64[:limit]
    head = head[: len(head) - len(head) % 4]
    try:
        return binascii.a2b_base64(head)
    except (binascii.Error, ValueError):
        return b""


def decoded_length(b64: str) -> int:
    return len(b64) * 3 // 4


# -- images ----------------------------------------------------------------------


def _openai_tiles(width: int, height: int, base: int, per_tile: int) -> int:
    w, h = width, height
    if max(w, h) > 2048:
        w, h = _ceil_div(w * 2048, max(w, h)), _ceil_div(h * 2048, max(w, h))
    if min(w, h) > 768:
        w, h = _ceil_div(w * 768, min(w, h)), _ceil_div(h * 768, min(w, h))
    return base + per_tile * _ceil_div(w, 512) * _ceil_div(h, 512)


def _openai_patches(width: int, height: int) -> int:
    patches = min(_ceil_div(width, 32) * _ceil_div(height, 32), 1536)
    return _ceil_div(patches * 246, 100)


def _anthropic(width: int, height: int) -> int:
    return min(_ceil_div(width * height, 750), ANTHROPIC_IMAGE_MAX)


def _gemini(width: int, height: int) -> int:
    w, h = width, height
    if max(w, h) > 3072:
        w, h = _ceil_div(w * 3072, max(w, h)), _ceil_div(h * 3072, max(w, h))
    tiles = 1 if w <= 384 and h <= 384 else _ceil_div(w, 768) * _ceil_div(h, 768)
    return max(258 * tiles, GEMINI_FIXED_IMAGE)


def _openai(width: int, height: int, mini: bool) -> int:
    base, per_tile = (2_833, 5_667) if mini else (85, 170)
    return max(_openai_tiles(width, height, base, per_tile), _openai_patches(width, height))


def image_tokens_bound(
    kind: str, *, official_openai: bool, mini: bool, size: tuple[int, int] | None
) -> int:
    """The most tokens one image can cost on an upstream of `kind`.

    `official_openai`: the upstream is OpenAI or Azure itself (not another service
    speaking its API); `mini`: the upstream model is a gpt-4o-mini."""
    if size is None or min(size) <= 0:
        if kind == "anthropic":
            return ANTHROPIC_IMAGE_MAX
        if kind == "gemini":
            return GEMINI_IMAGE_MAX
        if official_openai:
            return OPENAI_MINI_TILE_MAX if mini else max(OPENAI_TILE_MAX, OPENAI_PATCH_MAX)
        return max(COMPATIBLE_IMAGE_MAX, OPENAI_MINI_TILE_MAX if mini else 0)
    w, h = size
    if kind == "anthropic":
        return _anthropic(w, h)
    if kind == "gemini":
        return _gemini(w, h)
    if official_openai:
        return _openai(w, h, mini)
    qwen = min(_ceil_div(w, 28) * _ceil_div(h, 28), COMPATIBLE_IMAGE_MAX)
    return max(_openai(w, h, mini), _anthropic(w, h), _gemini(w, h), qwen)


# -- audio, video, documents -------------------------------------------------------


def wav_seconds(data: bytes) -> int | None:
    """Whole seconds (rounded up) of a PCM WAV file from its header, or None."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    i, byte_rate = 12, 0
    while i + 8 <= len(data):
        chunk, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        if chunk == b"fmt " and i + 20 <= len(data):
            byte_rate = int.from_bytes(data[i + 16 : i + 20], "little")
        elif chunk == b"data" and byte_rate:
            return _ceil_div(size, byte_rate)
        i += 8 + size + (size & 1)
    return None


def audio_tokens_bound(b64: str) -> int:
    seconds = wav_seconds(decode_prefix(b64, 4_096))
    if seconds is None:
        seconds = _ceil_div(decoded_length(b64), AUDIO_MIN_BYTES_PER_SECOND)
    return max(seconds, 1) * AUDIO_TOKENS_PER_SECOND


def video_tokens_bound(b64: str) -> int:
    seconds = _ceil_div(decoded_length(b64), VIDEO_MIN_BYTES_PER_SECOND)
    return max(seconds, 1) * VIDEO_TOKENS_PER_SECOND


def pdf_tokens_bound(b64: str) -> int:
    data = decode_prefix(b64, len(b64))
    pages = len(_PDF_PAGE.findall(data)) or 1 + len(data) // 100_000
    return pages * PDF_PAGE_TOKENS
