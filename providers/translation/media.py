"""Images and files inside messages: data URLs, plain URLs and media types."""

from __future__ import annotations

import binascii
import posixpath
import re
from urllib.parse import urlsplit

from .errors import TranslationError

# "type/subtype" with the characters RFC 6838 allows; parameters are not expected.
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")

_BY_EXTENSION = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".pdf": "application/pdf",
}


def parse_data_url(url: str, *, param: str) -> tuple[str, str]:
    """Split ``data:<media type>;base64,<data>`` into (media type, base64 data).

    Raises TranslationError naming `param` when the URL is not a base64 data URL
    or its data does not decode: better a precise 400 now than an opaque one
    from the upstream.
    """
    if not url.startswith("data:"):
        raise TranslationError(
            "Expected a data URL (data:<media type>;base64,<data>).", param=param
        )
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding.lower() != "base64" or not _MEDIA_TYPE.match(media_type):
        raise TranslationError(
            "Malformed data URL: expected data:<media type>;base64,<data>.", param=param
        )
    if not data:
        raise TranslationError("The data URL carries no data.", param=param)
    try:
        # strict_mode rejects stray characters and bad padding instead of skipping them.
        binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise TranslationError("The data URL's base64 data is not valid.", param=param) from None
    return media_type.lower(), data


def make_data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def is_http_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def guess_media_type(url: str) -> str | None:
    """A media type from the URL's file extension, for dialects that want one."""
    extension = posixpath.splitext(urlsplit(url).path)[1].lower()
    return _BY_EXTENSION.get(extension)
