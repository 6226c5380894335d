"""The largest body each /v1 endpoint takes, and the 413 that refuses a larger one in
the caller's shape (core.bodylimit enforces it before the body is read). The same
limit bounds a compressed body once decompressed (gateway.validation)."""

from __future__ import annotations

import re

import orjson

from core.bodylimit import Headers, Limit
from gateway.errors import dialect_for_path, too_large
from gateway.relay import new_request_id

MAX_JSON_BODY = 32 * 1024 * 1024  # bytes; chat, Responses, Messages carry base64 images
MAX_AUDIO_UPLOAD = 50 * 1024 * 1024  # bytes (DESIGN.md: transcription, 50 MiB)
MIB = 1024 * 1024

_V1 = re.compile(r"^/(?:api/)?v1(?:beta)?(?:/|$)")
# Endpoints whose requests are far smaller than a chat's (their upstreams' own limits:
# 2,048 embeddings inputs within 300,000 tokens; an image prompt of 32,000 characters;
# 4,096 characters to speak), then everything else under /v1.
_ENDPOINTS = (
    (re.compile(r"^/(?:api/)?v1/audio/(?:transcriptions|translations)/?$"), MAX_AUDIO_UPLOAD),
    (re.compile(r"^/(?:api/)?v1/embeddings/?$"), 8 * MIB),
    (re.compile(r"^/(?:api/)?v1/images/generations/?$"), 1 * MIB),
    (re.compile(r"^/(?:api/)?v1/audio/speech/?$"), 1 * MIB),
)


def limit_for(path: str) -> int | None:
    """The largest body `path` accepts, in bytes; None for paths outside /v1."""
    if not _V1.match(path):
        return None
    for pattern, limit in _ENDPOINTS:
        if pattern.match(path):
            return limit
    return MAX_JSON_BODY


def too_large_message(limit: int) -> str:
    size = f"{limit // MIB} MiB" if limit >= MIB else f"{limit // 1024} KiB"
    return f"The request body is larger than {size}, the limit of this endpoint."


def _refusal(path: str, limit: int) -> tuple[Headers, bytes]:
    dialect = dialect_for_path(path)
    body = orjson.dumps(too_large(too_large_message(limit)).body(dialect))
    headers = [(b"content-type", b"application/json"), (b"x-request-id", new_request_id().encode())]
    return headers, body


def policy(path: str) -> Limit | None:
    """The /v1 limit of `path` with its 413 in the caller's shape; None outside /v1."""
    limit = limit_for(path)
    if limit is None:
        return None
    return Limit(limit, lambda: _refusal(path, limit))
