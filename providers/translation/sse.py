"""Server-sent events: writing frames and reading them back incrementally.

Only the parts of the SSE format that LLM APIs use: `event:` and `data:` fields,
comments, and every line ending the spec allows. `id:` and `retry:` are read and
ignored (nobody reconnects to a completion stream).
"""

from __future__ import annotations

import json
import re
from typing import Any

_EOL = re.compile(rb"\r\n|\r|\n")


def _dumps(obj: Any) -> str:
    # Compact and UTF-8: the frames go over the wire many times per request.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sse_data(obj: Any) -> bytes:
    """An unnamed frame, as OpenAI streams use: ``data: {...}``.

    A str is sent as it is, so ``sse_data("[DONE]")`` writes the OpenAI terminator.
    """
    payload = obj if isinstance(obj, str) else _dumps(obj)
    return f"data: {payload}\n\n".encode()


def sse_event(event: dict[str, Any]) -> bytes:
    """A named frame, as Anthropic and the Responses API stream: the name is its type."""
    return f"event: {event['type']}\ndata: {_dumps(event)}\n\n".encode()


class SSEParser:
    """Feed raw bytes as they arrive; get back complete `(event_name, data)` pairs.

    The event name is "message" when the frame has no `event:` field. Multi-line
    data is joined with "\\n", as the spec says. Bytes are buffered until a whole
    line is there, so a chunk may end anywhere, even inside a UTF-8 character.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        events: list[tuple[str, str]] = []
        pos = 0
        while match := _EOL.search(self._buffer, pos):
            # A lone "\r" at the very end may be the first half of "\r\n".
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break
            event = self._line(self._buffer[pos : match.start()])
            if event is not None:
                events.append(event)
            pos = match.end()
        self._buffer = self._buffer[pos:]
        return events

    def finish(self) -> list[tuple[str, str]]:
        """Flush at end of stream: a last frame without its blank line still counts.

        The spec would drop it, but some upstreams close right after the data line
        and the content is worth more than the strictness.
        """
        events: list[tuple[str, str]] = []
        if self._buffer:
            line, self._buffer = self._buffer.rstrip(b"\r"), b""
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _line(self, raw: bytes) -> tuple[str, str] | None:
        if not self._started:
            # A byte order mark may open the stream; it is not part of the field.
            self._started = True
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw:
            return self._dispatch()
        if raw.startswith(b":"):
            return None  # a comment, used as a keep-alive
        line = raw.decode("utf-8", errors="replace")
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> tuple[str, str] | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return event, "\n".join(data)
