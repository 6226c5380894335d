"""chat.completion.chunk objects in, streamGenerateContent chunks out.

Text goes out as it comes, one chunk per delta. Gemini sends each function call
whole, so a call's argument fragments are held until its last one (the next call
starts, or the stream finishes); the last chunk carries the finish reason and the
usage, which a chat stream reports after its finish chunk.
"""

from __future__ import annotations

from typing import Any

from .. import chat
from ..usage import Usage
from .response_from_chat import finish_reason, function_call_part, response_id


class ChatStreamToGemini(chat.ChatChunkReader):
    def __init__(self, *, model: str) -> None:
        self.model = model
        self.response_id: str | None = None
        self.usage: Usage | None = None
        self.reason: str | None = None
        self._calls: dict[int, dict[str, str]] = {}  # chat tool index -> id, name, arguments
        self._done: set[int] = set()

    def _chunk(self, parts: list[dict[str, Any]], *, last: bool = False) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if last:
            candidate["finishReason"] = finish_reason(self.reason)
        out: dict[str, Any] = {"candidates": [candidate]}
        if last and self.usage is not None:
            out["usageMetadata"] = self.usage.to_gemini()
        out["modelVersion"] = self.model
        out["responseId"] = self.response_id
        return out

    def _start(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self.response_id is None:
            self.response_id = response_id(chunk.get("id"))
        return []

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        return [self._chunk([{"text": text}])]

    def _tool_fragment(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        index = call.get("index", 0)
        if index in self._done:
            return []  # a stray fragment of a call already sent
        out = self._flush(below=index)
        function = call.get("function") or {}
        pending = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        pending["id"] = pending["id"] or call.get("id") or ""
        pending["name"] = pending["name"] or function.get("name") or ""
        pending["arguments"] += function.get("arguments") or ""
        return out

    def _flush(self, *, below: int | None = None) -> list[dict[str, Any]]:
        """The calls complete by now, whole: every one before `below`, or all."""
        parts = []
        for index in sorted(self._calls):
            if below is not None and index >= below:
                break
            pending = self._calls.pop(index)
            self._done.add(index)
            call_id = pending["id"] or chat.new_id("call_")
            parts.append(function_call_part(call_id, pending["name"], pending["arguments"]))
        return [self._chunk(parts)] if parts else []

    def _finished(self, reason: str) -> list[dict[str, Any]]:
        self.reason = reason
        return []

    def finish(self) -> list[dict[str, Any]]:
        """The last chunk: the calls still held, the finish reason and the usage."""
        if self.response_id is None:
            self.response_id = chat.new_id("")
        held = self._flush()
        parts = held[0]["candidates"][0]["content"]["parts"] if held else [{"text": ""}]
        return [self._chunk(parts, last=True)]
