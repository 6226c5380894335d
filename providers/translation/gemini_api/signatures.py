"""Gemini's thought signatures, carried through the chat hub inside tool call ids.

A Gemini model that calls a function returns a `thoughtSignature` beside the call,
and Gemini 3 refuses the next turn unless the signature comes back with it. Chat has
no field for it, and a chat, Messages or Responses caller echoes only the tool call's
id: so the signature rides in the id, after a marker, URL-safe (Anthropic's ids allow
letters, digits, `_` and `-` only). Only the translation toward a Gemini upstream
reads it back.
"""

from __future__ import annotations

import base64
import binascii

MARKER = "__ts_"


def with_signature(call_id: str, signature: str | None) -> str:
    """`call_id` carrying `signature` (a base64 string, as Gemini sends it)."""
    if not signature or MARKER in call_id:
        return call_id
    # Bytes in Google's JSON come in either base64 alphabet (the Python SDK writes the
    # URL-safe one), padded or not.
    standard = signature.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return call_id  # not a signature Gemini made: nothing to keep
    return call_id + MARKER + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def split(call_id: str) -> tuple[str, str | None]:
    """(the id without its signature, the signature in Gemini's base64 or None)."""
    base, marker, encoded = call_id.partition(MARKER)
    if not marker or not encoded:
        return call_id, None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return call_id, None
    return base, base64.b64encode(raw).decode()
