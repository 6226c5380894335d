"""A Gemini generateContent request as a chat completions request (the Gemini API on
models whose upstream speaks something else).

Contents become messages (`model` turns are assistant turns), `functionCall` parts
tool calls and `functionResponse` parts tool messages, matched by the id the caller
gives (Gemini CLI numbers its calls) or else by name in order. Google's own tools
(search, code execution, URL context) and settings chat has no field for (safety
settings, topK, thinking) are left out and named in `notes`, for the caller to see in
a header; cached contents, which only exist at Google, are refused.
"""

from __future__ import annotations

from typing import Any

from .. import chat
from ..errors import TranslationError
from ..media import is_http_url, make_data_url, parse_data_url
from ..notes import TranslationNotes
from . import signatures

_MODES = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}

# generationConfig fields chat carries, and their chat names.
_SAMPLING = {
    "temperature": "temperature",
    "topP": "top_p",
    "seed": "seed",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
    "candidateCount": "n",
    "maxOutputTokens": "max_tokens",
}
# generationConfig fields read elsewhere below.
_READ = frozenset({"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema"})
# Request fields that change nothing a chat upstream could act on.
_QUIET = frozenset(
    {
        "contents", "model", "labels", "generationConfig", "tools", "toolConfig",
        "systemInstruction", "cachedContent",
    }
)  # fmt: skip


def gemini_request_to_chat(
    body: dict[str, Any],
    *,
    stream: bool,
    notes: TranslationNotes | None = None,
    keep_signatures: bool = False,
) -> dict[str, Any]:
    """`body` (a GenerateContentRequest) as a chat completions body.

    `keep_signatures`: function calls' thought signatures ride in their chat ids
    (signatures.with_signature), for routes to a Gemini upstream; other upstreams
    could not read them, and some refuse long ids.
    """
    if body.get("cachedContent"):
        raise TranslationError(
            "cachedContent is only available on models served by Gemini.", param="cachedContent"
        )
    notes = notes if notes is not None else TranslationNotes()
    messages = _system(body.get("systemInstruction"))
    messages += _Contents(keep_signatures).messages(body.get("contents"))
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    _generation_config(body.get("generationConfig"), out, notes)
    tools = _tools(body.get("tools"), notes)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("toolConfig"))
        if choice is not None:
            out["tool_choice"] = choice
    for name in body:
        if name not in _QUIET:
            notes.drop_setting(name)
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _system(instruction: Any) -> list[dict[str, Any]]:
    if not instruction:
        return []
    if isinstance(instruction, str):
        return [{"role": "system", "content": instruction}]
    content = chat.expect_dict(instruction, param="systemInstruction")
    parts = chat.expect_list(content.get("parts") or [], param="systemInstruction.parts")
    texts = [str(p.get("text") or "") for p in parts if isinstance(p, dict)]
    text = "\n\n".join(t for t in texts if t)
    return [{"role": "system", "content": text}] if text else []


class _Contents:
    """The turns of `contents`, with the ids that tie each call to its response."""

    def __init__(self, keep_signatures: bool) -> None:
        self.keep_signatures = keep_signatures
        self.by_id: dict[str, str] = {}  # the caller's call id -> the chat id
        self.unanswered: list[tuple[str, str]] = []  # (function name, chat id), in order
        self.answered: set[str] = set()  # chat ids

    def messages(self, contents: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, content in enumerate(chat.expect_list(contents, param="contents")):
            param = f"contents[{i}]"
            content = chat.expect_dict(content, param=param)
            parts = chat.expect_list(content.get("parts"), param=f"{param}.parts")
            role = content.get("role") or "user"
            if role == "model":
                out.extend(self._model_turn(i, parts, param=f"{param}.parts"))
            elif role in ("user", "function", "tool"):
                out.extend(self._user_turn(parts, param=f"{param}.parts"))
            else:
                raise TranslationError(
                    f"Unsupported role {role!r}: expected 'user' or 'model'.", param=f"{param}.role"
                )
        return out

    def _model_turn(self, turn: int, parts: list[Any], *, param: str) -> list[dict[str, Any]]:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for j, part in enumerate(parts):
            part = chat.expect_dict(part, param=f"{param}[{j}]")
            if isinstance(part.get("functionCall"), dict):
                calls.append(self._call(part, turn, j, param=f"{param}[{j}].functionCall"))
            elif isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
            # Thoughts, and the records of Google's own tools (executableCode,
            # codeExecutionResult), only Gemini could read back.
        if not texts and not calls:
            return []
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            message["tool_calls"] = calls
        return [message]

    def _call(self, part: dict[str, Any], turn: int, j: int, *, param: str) -> dict[str, Any]:
        call = part["functionCall"]
        name = call.get("name")
        if not isinstance(name, str) or not name:
            raise TranslationError("A function call needs a name.", param=f"{param}.name")
        given = call.get("id")
        # Without the caller's id, one made from the call's place in the conversation:
        # the same history gives the same ids (the upstream's prompt cache holds).
        chat_id = given if isinstance(given, str) and given else f"call_{turn}_{j}"
        if self.keep_signatures:
            chat_id = signatures.with_signature(chat_id, part.get("thoughtSignature"))
        if isinstance(given, str) and given:
            self.by_id[given] = chat_id
        self.unanswered.append((name, chat_id))
        args = call.get("args")
        if args is not None and not isinstance(args, dict):
            raise TranslationError("Function call args must be an object.", param=f"{param}.args")
        return chat.tool_call(chat_id, name, chat.dump_arguments(args))

    def _user_turn(self, parts: list[Any], *, param: str) -> list[dict[str, Any]]:
        # Function responses become tool messages, which must directly follow the
        # calls; whatever else the turn says follows them as one user message.
        tools: list[dict[str, Any]] = []
        content: list[dict[str, Any]] = []
        for j, part in enumerate(parts):
            part = chat.expect_dict(part, param=f"{param}[{j}]")
            if isinstance(part.get("functionResponse"), dict):
                response = self._response(part["functionResponse"], param=f"{param}[{j}]")
                if response is not None:
                    tools.append(response)
                continue
            converted = _user_part(part, param=f"{param}[{j}]")
            if converted is not None:
                content.append(converted)
        if content:
            tools.append({"role": "user", "content": chat.collapse_text_parts(content)})
        return tools

    def _response(self, response: dict[str, Any], *, param: str) -> dict[str, Any] | None:
        name = response.get("name")
        given = response.get("id")
        chat_id = self.by_id.get(given) if isinstance(given, str) else None
        if chat_id in self.answered:
            # Gemini CLI 0.61 repeats each response when it resumes a session; chat and
            # Messages upstreams refuse a call answered twice. The first one stands.
            return None
        if chat_id is None:
            chat_id = self._take_by_name(name)
        else:
            self.unanswered = [u for u in self.unanswered if u[1] != chat_id]
        if chat_id is None:
            raise TranslationError(
                "This function response answers no earlier function call.",
                param=f"{param}.functionResponse",
            )
        self.answered.add(chat_id)
        return {"role": "tool", "tool_call_id": chat_id, "content": _response_text(response)}

    def _take_by_name(self, name: Any) -> str | None:
        for k, (called, chat_id) in enumerate(self.unanswered):
            if called == name:
                del self.unanswered[k]
                return chat_id
        return None


def _response_text(response: dict[str, Any]) -> str:
    """What a function returned, as the text of a tool message: Gemini CLI puts it in
    `response.output` (Google's documents name `output` or `result`), sent as it is;
    anything else (errors in `response.error` included) is sent as JSON."""
    result = response.get("response")
    if isinstance(result, dict) and len(result) == 1:
        name, value = next(iter(result.items()))
        if name in ("output", "result", "content") and isinstance(value, str):
            return value
    return chat.dump_arguments(result)


def _user_part(part: dict[str, Any], *, param: str) -> dict[str, Any] | None:
    if isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]} if part["text"] else None
    if isinstance(part.get("inlineData"), dict):
        data = part["inlineData"]
        media_type = str(data.get("mimeType") or "").lower()
        # Google's JSON takes bytes in either base64 alphabet, padded or not; data URLs
        # and every other upstream want the standard one.
        encoded = str(data.get("data") or "").replace("-", "+").replace("_", "/")
        encoded += "=" * (-len(encoded) % 4)
        url = make_data_url(media_type, encoded)
        parse_data_url(url, param=f"{param}.inlineData")  # checks the type and the data
        return _media(media_type, url, encoded, param=f"{param}.inlineData")
    if isinstance(part.get("fileData"), dict):
        uri = part["fileData"].get("fileUri")
        media_type = str(part["fileData"].get("mimeType") or "image/").lower()
        if isinstance(uri, str) and is_http_url(uri) and media_type.startswith("image/"):
            return {"type": "image_url", "image_url": {"url": uri}}
        raise TranslationError(
            "Only images given by an http(s) URL can be sent as fileData to this model; "
            "send other files inline (inlineData).",
            param=f"{param}.fileData",
        )
    if part.get("thought") or "executableCode" in part or "codeExecutionResult" in part:
        return None
    raise TranslationError("This kind of part is not supported by this model.", param=param)


def _media(media_type: str, url: str, data: str, *, param: str) -> dict[str, Any]:
    if media_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    if media_type == "application/pdf":
        return {"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}
    if media_type in _AUDIO_FORMATS:
        return {
            "type": "input_audio",
            "input_audio": {"data": data, "format": _AUDIO_FORMATS[media_type]},
        }
    raise TranslationError(
        f"Media type {media_type!r} is not supported by this model (images, PDF, WAV and MP3 are).",
        param=param,
    )


def _generation_config(config: Any, out: dict[str, Any], notes: TranslationNotes) -> None:
    if config is None:
        return
    config = chat.expect_dict(config, param="generationConfig")
    for name, value in config.items():
        if name in _SAMPLING:
            if value is not None:
                out[_SAMPLING[name]] = value
        elif name not in _READ:
            notes.drop_setting(f"generationConfig.{name}")
    stops = config.get("stopSequences")
    if stops:
        out["stop"] = list(chat.expect_list(stops, param="generationConfig.stopSequences"))
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseMimeType") == "application/json" or schema:
        if schema:
            if "responseSchema" in config and "responseJsonSchema" not in config:
                schema = json_schema(schema)
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema},
            }
        else:
            out["response_format"] = {"type": "json_object"}


def _tools(tools: Any, notes: TranslationNotes) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(chat.expect_list(tools or [], param="tools")):
        tool = chat.expect_dict(tool, param=f"tools[{i}]")
        for name, value in tool.items():
            if name != "functionDeclarations":
                # Google's own tools (googleSearch, codeExecution, urlContext...) run
                # at Google; other upstreams have nothing to run them with.
                notes.drop_tool(param=f"tools[{i}]", kind=name)
                continue
            param = f"tools[{i}].functionDeclarations"
            for k, declaration in enumerate(chat.expect_list(value, param=param)):
                out.append(_function(chat.expect_dict(declaration, param=f"{param}[{k}]")))
    return out


def _function(declaration: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": declaration.get("name")}
    if declaration.get("description"):
        function["description"] = declaration["description"]
    if declaration.get("parametersJsonSchema"):
        function["parameters"] = declaration["parametersJsonSchema"]
    elif declaration.get("parameters"):
        function["parameters"] = json_schema(declaration["parameters"])
    else:
        function["parameters"] = {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


# Schema fields of Google's OpenAPI subset that JSON Schema has no use for.
_SCHEMA_ONLY = frozenset({"propertyOrdering", "example", "nullable"})


def json_schema(schema: Any) -> Any:
    """Google's OpenAPI-subset Schema (`"type": "OBJECT"`, `nullable`) as JSON Schema."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for name, value in schema.items():
        if name in _SCHEMA_ONLY:
            continue
        if name == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif name == "properties" and isinstance(value, dict):
            out["properties"] = {k: json_schema(v) for k, v in value.items()}
        elif name in ("items", "anyOf"):
            out[name] = json_schema(value)
        else:
            out[name] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _tool_choice(config: Any) -> Any:
    calling = (config or {}).get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return None
    mode = _MODES.get(str(calling.get("mode") or "AUTO").upper())
    if mode is None:
        raise TranslationError(
            "Unsupported function calling mode.", param="toolConfig.functionCallingConfig.mode"
        )
    allowed = calling.get("allowedFunctionNames")
    if mode == "required" and isinstance(allowed, list) and len(allowed) == 1:
        return {"type": "function", "function": {"name": allowed[0]}}
    return mode
