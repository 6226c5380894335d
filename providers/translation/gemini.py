"""OpenAI Chat Completions -> Google Gemini generateContent, and the answers back.

The model name and `alt=sse` go in Gemini's URL, so the adapter sets them; the
body built here carries everything else.
"""

from __future__ import annotations

from typing import Any

from . import chat
from .errors import TranslationError
from .gemini_api import signatures
from .media import guess_media_type, is_http_url, parse_data_url
from .usage import Usage

# Gemini 3 requires the thoughtSignature it returned with a function call to come
# back with it. It rides in the chat tool call's id (gemini_api.signatures); a call
# whose id carries none (history made elsewhere) gets the placeholder Google
# documents for that.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

_TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def finish_reason_from_gemini(reason: str | None, *, has_tool_calls: bool) -> str:
    finish = _FINISH_REASONS.get(reason or "", "stop")
    # Gemini says STOP after function calls; chat callers wait for "tool_calls".
    return "tool_calls" if has_tool_calls and finish == "stop" else finish


# =============================================================================
# Chat request -> Gemini request
# =============================================================================


def chat_request_to_gemini(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completions request body as a Gemini generateContent body."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise TranslationError("This model returns a single choice; 'n' must be 1.", param="n")
    system_parts, contents = _messages_to_gemini(body.get("messages"))
    out: dict[str, Any] = {"contents": contents}
    if system_parts:
        out["systemInstruction"] = {"parts": system_parts}
    if body.get("tools"):
        out["tools"] = [{"functionDeclarations": _tools_to_gemini(body["tools"])}]
    tool_config = _tool_choice_to_gemini(body.get("tool_choice"))
    if tool_config is not None:
        out["toolConfig"] = tool_config
    generation_config = _generation_config(body)
    if generation_config:
        out["generationConfig"] = generation_config
    return out


def _messages_to_gemini(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    # Gemini answers a call by the function's name, chat by the call's id.
    names_by_call_id: dict[str, str] = {}
    for i, message in enumerate(chat.expect_list(messages, param="messages")):
        param = f"messages[{i}]"
        message = chat.expect_dict(message, param=param)
        role = message.get("role")
        if role in chat.SYSTEM_ROLES:
            text = chat.text_of_parts(message.get("content"), param=f"{param}.content")
            if text:
                system_parts.append({"text": text})
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), param=f"{param}.content"))
        elif role == "assistant":
            _append(contents, "model", _model_parts(message, names_by_call_id, param=param))
        elif role == "tool":
            _append(contents, "user", [_function_response(message, names_by_call_id, param=param)])
        else:
            raise TranslationError(f"Unsupported message role {role!r}.", param=f"{param}.role")
    return system_parts, contents


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    # One content per turn: parallel function responses must sit together in the
    # turn after the calls, and Gemini refuses contents without parts.
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any, *, param: str) -> list[dict[str, Any]]:
    return chat.convert_parts(content, param=param, text=lambda t: {"text": t}, convert=_user_part)


def _user_part(part: Any, *, param: str) -> dict[str, Any] | None:
    part = chat.expect_dict(part, param=param)
    kind = part.get("type")
    if kind == "text":
        return {"text": part["text"]} if part.get("text") else None
    if kind == "image_url":
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, dict) else image_url
        return _media_part(url, param=f"{param}.image_url")
    if kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        return _media_part(data, param=f"{param}.file")
    raise TranslationError(
        f"Content part type {kind!r} is not supported by this model.", param=f"{param}.type"
    )


def _media_part(url: Any, *, param: str) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise TranslationError("A URL or data URL is required.", param=param)
    if is_http_url(url):
        file_data = {"fileUri": url}
        media_type = guess_media_type(url)
        if media_type:
            file_data["mimeType"] = media_type
        return {"fileData": file_data}
    media_type, data = parse_data_url(url, param=param)
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _model_parts(
    message: dict[str, Any], names_by_call_id: dict[str, str], *, param: str
) -> list[dict[str, Any]]:
    text = chat.text_of_parts(
        message.get("content"), param=f"{param}.content", allowed=frozenset({"text", "refusal"})
    )
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for k, call in enumerate(message.get("tool_calls") or []):
        call_param = f"{param}.tool_calls[{k}]"
        call = chat.expect_dict(call, param=call_param)
        function = chat.expect_dict(call.get("function"), param=f"{call_param}.function")
        if not function.get("name"):
            raise TranslationError("A tool call needs a function name.", param=call_param)
        names_by_call_id[str(call.get("id"))] = function["name"]
        _, signature = signatures.split(str(call.get("id") or ""))
        part: dict[str, Any] = {
            "functionCall": {
                "name": function["name"],
                "args": chat.parse_arguments(
                    function.get("arguments"), param=f"{call_param}.function.arguments"
                ),
            }
        }
        if signature:
            part["thoughtSignature"] = signature
        elif k == 0:
            # Gemini expects the signature on the first call of a step only.
            part["thoughtSignature"] = SKIP_THOUGHT_SIGNATURE
        parts.append(part)
    return parts


def _function_response(
    message: dict[str, Any], names_by_call_id: dict[str, str], *, param: str
) -> dict[str, Any]:
    name = names_by_call_id.get(str(message.get("tool_call_id")))
    if name is None:
        raise TranslationError(
            "tool_call_id does not match any earlier tool call.", param=f"{param}.tool_call_id"
        )
    output = chat.text_of_parts(message.get("content"), param=f"{param}.content")
    # Gemini wants an object here; "output" is the key its documentation uses.
    return {"functionResponse": {"name": name, "response": {"output": output}}}


def _tools_to_gemini(tools: Any) -> list[dict[str, Any]]:
    declarations = []
    for function in chat.function_tools(tools):
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            # The JSON Schema field takes OpenAI's schemas as they are; the older
            # `parameters` field only knows an OpenAPI subset.
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations


def _tool_choice_to_gemini(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICE_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_CHOICE_MODES[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise TranslationError("Unsupported tool_choice.", param="tool_choice")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    return config


# =============================================================================
# Gemini response -> chat response
# =============================================================================


def _candidate_parts(resp: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    candidates = resp.get("candidates") or []
    if not candidates:
        # The prompt itself was blocked: no candidate, only promptFeedback.
        blocked = (resp.get("promptFeedback") or {}).get("blockReason")
        return [], "SAFETY" if blocked else None
    candidate = candidates[0]
    return (candidate.get("content") or {}).get("parts") or [], candidate.get("finishReason")


def _visible_text(part: dict[str, Any]) -> str:
    # Thought summaries (thought: true) are the model's reasoning, not its answer.
    if part.get("thought") or not isinstance(part.get("text"), str):
        return ""
    return str(part["text"])


def gemini_response_to_chat(
    resp: dict[str, Any],
    *,
    model: str,
    request_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A generateContent response as a chat.completion object.

    Gemini gives function calls no id (or one only it knows); each gets a fresh
    `call_...` id, which the caller echoes back and the request side maps to the
    function's name. The id carries the call's thought signature.
    """
    parts, reason = _candidate_parts(resp)
    text = "".join(_visible_text(part) for part in parts)
    tool_calls = [
        chat.tool_call(
            call_id(part),
            part["functionCall"].get("name") or "",
            chat.dump_arguments(part["functionCall"].get("args")),
        )
        for part in parts
        if isinstance(part.get("functionCall"), dict)
    ]
    response_id = resp.get("responseId")
    return chat.completion(
        completion_id=request_id
        or (f"chatcmpl-{response_id}" if response_id else chat.new_id("chatcmpl-")),
        model=model,
        created=created if created is not None else chat.now(),
        content=text if text or not tool_calls else None,
        tool_calls=tool_calls,
        finish_reason=finish_reason_from_gemini(reason, has_tool_calls=bool(tool_calls)),
        usage=Usage.from_gemini(resp.get("usageMetadata")),
    )


def call_id(part: dict[str, Any]) -> str:
    """A fresh chat id for a functionCall part, carrying its thought signature."""
    return signatures.with_signature(chat.new_id("call_"), part.get("thoughtSignature"))


class GeminiStreamToChat(chat.ChunkStream):
    """streamGenerateContent?alt=sse chunks in, chat.completion.chunk objects out.

    Gemini streams text in pieces but each function call whole, so a tool call is
    one chunk with its id, name and complete arguments. Call `finish()` when the
    upstream closes: it sends the finish chunk if Gemini never gave a reason,
    then the usage chunk when `include_usage` is set. `error` holds the body of an
    upstream error object sent inside the stream.
    """

    def _setup(self) -> None:
        self._tool_count = 0

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
            return []
        if chunk.get("usageMetadata"):
            # Each chunk repeats the running totals; the last one is final.
            self.usage = Usage.from_gemini(chunk["usageMetadata"])
        out = self._start()
        parts, reason = _candidate_parts(chunk)
        for part in parts:
            text = _visible_text(part)
            if text:
                out.append(self._chunks.text_chunk(text))
            elif isinstance(part.get("functionCall"), dict):
                out.append(self._tool_call(part))
        if reason and self.finish_reason is None:
            self.finish_reason = finish_reason_from_gemini(
                reason, has_tool_calls=self._tool_count > 0
            )
            out.append(self._chunks.finish_chunk(self.finish_reason))
        return out

    def finish(self) -> list[dict[str, Any]]:
        if self._finished:
            return []
        self._finished = True
        out = self._start()
        if self.finish_reason is None and self.error is None:
            self.finish_reason = finish_reason_from_gemini(
                None, has_tool_calls=self._tool_count > 0
            )
            out.append(self._chunks.finish_chunk(self.finish_reason))
        if self._include_usage:
            out.append(self._chunks.usage_chunk(self.usage))
        return out

    def _tool_call(self, part: dict[str, Any]) -> dict[str, Any]:
        index = self._tool_count
        self._tool_count += 1
        call = part["functionCall"]
        return self._chunks.tool_start_chunk(
            index, call_id(part), call.get("name") or "", chat.dump_arguments(call.get("args"))
        )
