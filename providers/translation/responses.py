"""OpenAI Responses API <-> OpenAI Chat Completions.

/v1/responses is served on every upstream by translating to chat completions and
back. State (`previous_response_id`) is the gateway's business: it stores the
chat messages of each response (`responses_output_to_chat_messages`) and hands
them back as `history`.
"""

from __future__ import annotations

from typing import Any

from . import chat
from .errors import TranslationError
from .media import parse_data_url
from .notes import TranslationNotes
from .usage import Usage

# chat finish_reason -> Responses incomplete_details.reason, when the answer is cut short.
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

# A freeform (`custom`) tool travels in chat as a function with this one string argument.
FREEFORM_ARGUMENT = "input"

# Items that record what a built-in tool did inside OpenAI (or a compaction only OpenAI
# can read): no other upstream can use them, and their tools are dropped too.
# (item_reference is not one: it names content the gateway would need and cannot find.)
_SERVER_ITEMS = frozenset(
    {
        "web_search_call", "file_search_call", "image_generation_call",
        "code_interpreter_call", "computer_call", "computer_call_output",
        "local_shell_call", "local_shell_call_output", "shell_call", "shell_call_output",
        "apply_patch_call", "apply_patch_call_output", "mcp_call", "mcp_list_tools",
        "mcp_approval_request", "mcp_approval_response", "tool_search_call",
        "tool_search_output", "compaction",
    }
)  # fmt: skip


# =============================================================================
# Responses request -> chat request
# =============================================================================


def responses_request_to_chat(
    body: dict[str, Any],
    *,
    history: list[dict[str, Any]] | None = None,
    notes: TranslationNotes | None = None,
) -> dict[str, Any]:
    """A Responses request body as a chat completions request body.

    `history` is the chat messages stored for `previous_response_id`; the new
    request's `instructions` go first, as the Responses API does not carry a
    previous response's instructions over.

    Tools: `namespace` tools are flattened into their function tools (names kept),
    `custom` (freeform) tools become functions of one string argument
    (FREEFORM_ARGUMENT) and come back as `custom_tool_call` items, and built-in tools
    (web_search, image_generation, local_shell...) are dropped and recorded in `notes`,
    unless `tool_choice` forces one (TranslationError naming tool_choice). Reasoning
    items are dropped: only the model that wrote them can read them.
    """
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions:
        if not isinstance(instructions, str):
            raise TranslationError("instructions must be a string.", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages.extend(history or [])
    if body.get("input") is None and not history:
        raise TranslationError("input is required.", param="input")
    messages.extend(_input_to_chat(body.get("input")))
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "user"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stream"):
        out["stream"] = True
        # The closing response.completed carries usage, which chat streams only
        # send when asked.
        out["stream_options"] = {"include_usage": True}
    tools = _tools_to_chat(body["tools"], notes=notes) if body.get("tools") else []
    if tools:
        out["tools"] = tools
        # Upstreams refuse parallel_tool_calls without tools; Codex always sends it.
        if body.get("parallel_tool_calls") is not None:
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    tool_choice = _tool_choice_to_chat(body.get("tool_choice"), has_tools=bool(tools))
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    response_format = _text_format_to_chat(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        out["reasoning_effort"] = effort
    return out


def _input_to_chat(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return _items_to_chat(chat.expect_list(value, param="input"), param="input")


def _items_to_chat(items: list[Any], *, param: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        item_param = f"{param}[{i}]"
        item = chat.expect_dict(item, param=item_param)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message_item_to_chat(item, param=item_param))
        elif kind == "function_call":
            _append_tool_call(messages, item, param=item_param)
        elif kind == "custom_tool_call":
            _append_tool_call(messages, _custom_call_as_function(item), param=item_param)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.extend(_function_output_to_chat(item, param=item_param))
        elif kind == "reasoning" or kind in _SERVER_ITEMS:
            continue  # encrypted reasoning only its own model can use; built-in tool runs
        else:
            raise TranslationError(
                f"Input item type {kind!r} is not supported.", param=f"{item_param}.type"
            )
    return messages


def _message_item_to_chat(item: dict[str, Any], *, param: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise TranslationError(f"Unsupported role {role!r}.", param=f"{param}.role")
    # "developer" is chat's newer name for "system"; many upstreams know only the old one.
    role = "system" if role == "developer" else role
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = [
        _content_part_to_chat(part, param=f"{param}.content[{j}]")
        for j, part in enumerate(chat.expect_list(content, param=f"{param}.content"))
    ]
    if role != "user":
        # Only user messages may carry images or files in chat.
        for j, part in enumerate(parts):
            if part["type"] != "text":
                raise TranslationError(
                    f"A {role} message can only contain text.", param=f"{param}.content[{j}]"
                )
    return {"role": role, "content": chat.collapse_text_parts(parts)}


def _content_part_to_chat(part: Any, *, param: str) -> dict[str, Any]:
    part = chat.expect_dict(part, param=param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise TranslationError(
                "Only images given by image_url are supported (not file_id).",
                param=f"{param}.image_url",
            )
        if url.startswith("data:"):
            parse_data_url(url, param=f"{param}.image_url")
        image_url: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image_url["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image_url}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise TranslationError(
                "Only inline files (file_data) are supported.", param=f"{param}.file_data"
            )
        parse_data_url(data, param=f"{param}.file_data")
        file: dict[str, Any] = {"file_data": data}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise TranslationError(f"Content type {kind!r} is not supported.", param=f"{param}.type")


def _append_tool_call(messages: list[dict[str, Any]], item: dict[str, Any], *, param: str) -> None:
    if not item.get("call_id") or not item.get("name"):
        raise TranslationError("function_call needs call_id and name.", param=param)
    arguments = item.get("arguments")
    call = chat.tool_call(item["call_id"], item["name"], arguments if arguments else "{}")
    # A model's text and the calls that follow it are one assistant turn in chat.
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _custom_call_as_function(item: dict[str, Any]) -> dict[str, Any]:
    text = item.get("input")
    arguments = {FREEFORM_ARGUMENT: text if isinstance(text, str) else ""}
    return {**item, "arguments": chat.dump_arguments(arguments)}


def _function_output_to_chat(item: dict[str, Any], *, param: str) -> list[dict[str, Any]]:
    if not item.get("call_id"):
        raise TranslationError("function_call_output needs call_id.", param=f"{param}.call_id")
    output = item.get("output")
    if output is None or isinstance(output, str):
        return [{"role": "tool", "tool_call_id": item["call_id"], "content": output or ""}]
    parts = [
        _content_part_to_chat(part, param=f"{param}.output[{j}]")
        for j, part in enumerate(chat.expect_list(output, param=f"{param}.output"))
    ]
    text = "".join(part["text"] for part in parts if part["type"] == "text")
    messages = [{"role": "tool", "tool_call_id": item["call_id"], "content": text}]
    # Chat tool messages hold text only: images and files travel in a user message after.
    media = [part for part in parts if part["type"] != "text"]
    if media:
        messages.append({"role": "user", "content": media})
    return messages


def _tools_to_chat(tools: Any, *, notes: TranslationNotes | None) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(chat.expect_list(tools, param="tools")):
        param = f"tools[{i}]"
        tool = chat.expect_dict(tool, param=param)
        if tool.get("type") == "namespace":
            # A group of tools under one name (Codex's multi_agent_v1): its tools are
            # offered as they are, so the model's calls name them directly.
            inner = chat.expect_list(tool.get("tools"), param=f"{param}.tools")
            for j, member in enumerate(inner):
                out.extend(_tool_to_chat(member, param=f"{param}.tools[{j}]", notes=notes))
        else:
            out.extend(_tool_to_chat(tool, param=param, notes=notes))
    return out


def _tool_to_chat(tool: Any, *, param: str, notes: TranslationNotes | None) -> list[dict[str, Any]]:
    tool = chat.expect_dict(tool, param=param)
    kind = tool.get("type")
    if kind not in ("function", "custom"):
        # Built-in tools (web_search, file_search, local_shell, ...) run inside
        # OpenAI; the gateway has nothing to run them with, so they are left out.
        if notes is not None:
            notes.drop_tool(param=param, kind=str(kind), name=tool.get("name"))
        return []
    if not tool.get("name"):
        raise TranslationError(f"A {kind} tool needs a name.", param=f"{param}.name")
    if kind == "custom":
        return [{"type": "function", "function": _custom_function(tool)}]
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return [{"type": "function", "function": function}]


def _custom_function(tool: dict[str, Any]) -> dict[str, Any]:
    """A freeform tool as a function taking its raw text in one string argument. The
    grammar, when there is one, is given to the model in the argument's description."""
    about = "The raw input for this tool, as its description says (not JSON)."
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        about += f" It must follow this {fmt.get('syntax') or ''} grammar:\n{fmt['definition']}"
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": {
            "type": "object",
            "properties": {FREEFORM_ARGUMENT: {"type": "string", "description": about}},
            "required": [FREEFORM_ARGUMENT],
            "additionalProperties": False,
        },
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return function


def custom_tool_names(request_body: dict[str, Any]) -> frozenset[str]:
    """The names of the request's freeform tools, whose calls go back as custom_tool_call."""
    names = set()
    for tool in request_body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        members = tool.get("tools") if tool.get("type") == "namespace" else [tool]
        for member in members if isinstance(members, list) else []:
            if isinstance(member, dict) and member.get("type") == "custom" and member.get("name"):
                names.add(member["name"])
    return frozenset(names)


def _tool_choice_to_chat(choice: Any, *, has_tools: bool) -> Any:
    if choice is None:
        return None
    if isinstance(choice, dict) and choice.get("type") not in (None, "function", "custom"):
        kind = choice["type"]
        if kind == "allowed_tools":
            # Chat's own allowed_tools is OpenAI-only; its mode is what every upstream knows.
            choice = "required" if choice.get("mode") == "required" else "auto"
        else:
            raise TranslationError(
                f"tool_choice forces the built-in tool {kind!r}, which this model cannot run.",
                param="tool_choice",
            )
    if not has_tools:
        # Every tool was a built-in one and is gone: nothing left to choose from.
        if choice == "required" or isinstance(choice, dict):
            raise TranslationError(
                "tool_choice requires a tool, but none of the tools can run on this model.",
                param="tool_choice",
            )
        return None
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise TranslationError("Unsupported tool_choice.", param="tool_choice")


def _text_format_to_chat(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {
            key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt
        }
        return {"type": "json_schema", "json_schema": schema}
    raise TranslationError("Unsupported text.format.", param="text.format.type")


# =============================================================================
# Chat response -> Response object
# =============================================================================


def _suffix(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def _item_id(prefix: str, suffix: str, output_index: int) -> str:
    # Derived from the response id, so a stored response's items are stable.
    return f"{prefix}_{suffix}" if output_index == 0 else f"{prefix}_{suffix}_{output_index}"


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [_output_text(text)],
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(
    kind: str, item_id: str, call_id: str, name: str, payload: str, status: str
) -> dict[str, Any]:
    """A `function_call` (its `arguments`) or a `custom_tool_call` (its `input`)."""
    field = "arguments" if kind == "function_call" else "input"
    return {
        "id": item_id,
        "type": kind,
        "status": status,
        "call_id": call_id,
        "name": name,
        field: payload,
    }


def _function_call_item(*args: Any) -> dict[str, Any]:
    return _call_item("function_call", *args)


def _custom_call_item(*args: Any) -> dict[str, Any]:
    return _call_item("custom_tool_call", *args)


def freeform_input(arguments: str) -> str:
    """The raw text of a freeform tool call made as a function call: its one string
    argument, or the arguments as they are when the model wrote something else."""
    parsed = chat.lenient_arguments(arguments)
    value = parsed.get(FREEFORM_ARGUMENT)
    return value if isinstance(value, str) else arguments


def _echo_tools(request_body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for tool in request_body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tools.append(
                {
                    "type": "function",
                    "name": tool.get("name"),
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict"),
                }
            )
    return tools


def _status_for(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    reason = _INCOMPLETE_REASONS.get(finish_reason or "")
    if reason:
        return "incomplete", {"reason": reason}
    return "completed", None


def build_response(
    *,
    response_id: str,
    model: str,
    created_at: int,
    request_body: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    incomplete_details: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Response object, echoing the request's settings as the real API does."""
    body = request_body
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": _echo_tools(body),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage.to_responses() if usage is not None else None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def chat_response_to_responses(
    resp: dict[str, Any],
    *,
    response_id: str,
    model: str,
    request_body: dict[str, Any],
) -> dict[str, Any]:
    """A chat.completion object as a Response object."""
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    status, incomplete = _status_for(choice.get("finish_reason"))
    suffix = _suffix(response_id)
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = chat.text_of_parts(text, param="content", allowed=frozenset({"text", "refusal"}))
    if text:
        output.append(_message_item(_item_id("msg", suffix, 0), text, status))
    custom = custom_tool_names(request_body)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name, arguments = function.get("name") or "", function.get("arguments") or ""
        call_id = call.get("id") or chat.new_id("call_")
        if name in custom:
            item_id = _item_id("ctc", suffix, len(output))
            output.append(
                _custom_call_item(item_id, call_id, name, freeform_input(arguments), "completed")
            )
        else:
            item_id = _item_id("fc", suffix, len(output))
            output.append(_function_call_item(item_id, call_id, name, arguments, "completed"))
    created = resp.get("created")
    return build_response(
        response_id=response_id,
        model=model,
        created_at=created if isinstance(created, int) else chat.now(),
        request_body=request_body,
        status=status,
        output=output,
        usage=Usage.from_openai_chat(resp.get("usage")),
        incomplete_details=incomplete,
    )


# =============================================================================
# Chat stream -> Responses stream
# =============================================================================


class ChatStreamToResponses(chat.ChatChunkReader):
    """chat.completion.chunk objects in, Responses stream events out.

    The first `feed()` answers response.created and response.in_progress. Text
    becomes a message item, each tool call a function_call item, each with its
    added / delta / done events; `finish()` closes what is open and ends with
    response.completed (or response.incomplete). `response` is the final
    Response object once `finish()` (or `fail()`) has run, for the gateway to store.

    As for Anthropic, tool call fragments are expected in order per call; a stray
    fragment of a call already closed is dropped.
    """

    def __init__(
        self,
        *,
        response_id: str,
        model: str,
        request_body: dict[str, Any],
        created_at: int | None = None,
    ) -> None:
        self.response_id = response_id
        self.model = model
        self.request_body = request_body
        self.created_at = created_at if created_at is not None else chat.now()
        self.usage = Usage(0, 0)
        self.finish_reason: str | None = None
        self.response: dict[str, Any] | None = None
        self._sequence = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # closed items, final form
        # ("text", output index) or ("tool" | "custom", chat tool index, output index).
        self._open: tuple[Any, ...] | None = None
        self._text: list[str] = []
        self._arguments: list[str] = []
        self._call: tuple[str, str] = ("", "")  # (call_id, name) of the open tool call
        self._tools = chat.PendingToolCalls()
        self._suffix = _suffix(response_id)
        self._custom = custom_tool_names(request_body)

    # -- public ------------------------------------------------------------------

    def _finished(self, finish_reason: str) -> list[dict[str, Any]]:
        self.finish_reason = finish_reason
        return self._close_all()

    def finish(self) -> list[dict[str, Any]]:
        out = self._start()
        out.extend(self._close_all())
        status, incomplete = _status_for(self.finish_reason)
        self.response = self._snapshot(status, incomplete_details=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, response=self.response))
        return out

    def fail(self, message: str, *, code: str = "server_error") -> list[dict[str, Any]]:
        """The events that end a stream whose upstream failed after output started."""
        out = self._start()
        out.extend(self._close_all())
        error = {"code": code, "message": message}
        self.response = self._snapshot("failed", error=error)
        out.append(self._event("error", code=code, message=message, param=None))
        out.append(self._event("response.failed", response=self.response))
        return out

    # -- events --------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(
        self,
        status: str,
        *,
        incomplete_details: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        final = status != "in_progress"
        return build_response(
            response_id=self.response_id,
            model=self.model,
            created_at=self.created_at,
            request_body=self.request_body,
            status=status,
            output=list(self._output) if final else [],
            usage=self.usage if final else None,
            incomplete_details=incomplete_details,
            error=error,
        )

    def _start(self, chunk: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        snapshot = self._snapshot("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    # -- items ---------------------------------------------------------------------

    def _item_status(self) -> str:
        return "incomplete" if self.finish_reason in _INCOMPLETE_REASONS else "completed"

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._open is None or self._open[0] != "text":
            out = self._close()
            out.extend(self._open_text())
        self._text.append(text)
        out.append(
            self._event(
                "response.output_text.delta",
                item_id=self._item_id(),
                output_index=self._open[-1],  # type: ignore[index]
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return out

    def _open_text(self) -> list[dict[str, Any]]:
        index = len(self._output)
        self._open = ("text", index)
        self._text = []
        item_id = self._item_id()
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        return [
            self._event("response.output_item.added", output_index=index, item=item),
            self._event(
                "response.content_part.added",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=_output_text(""),
            ),
        ]

    def _item_id(self) -> str:
        assert self._open is not None
        prefix = {"text": "msg", "tool": "fc", "custom": "ctc"}[self._open[0]]
        return _item_id(prefix, self._suffix, self._open[-1])

    def _tool_fragment(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        tool_index = call.get("index", 0)
        fragment = (call.get("function") or {}).get("arguments") or ""
        if self._open is not None and self._open[0] != "text" and self._open[1] == tool_index:
            return self._arguments_delta(fragment) if fragment else []
        # output_item.added must carry the call's name, so the call waits for it.
        ready = self._tools.add(call)
        return self._open_pending(ready) if ready is not None else []

    def _open_pending(self, tool_index: int) -> list[dict[str, Any]]:
        pending = self._tools.pop(tool_index)
        out = self._close()
        index = len(self._output)
        kind = "custom" if pending["name"] in self._custom else "tool"
        self._open = (kind, tool_index, index)
        self._call = (pending["id"] or chat.new_id("call_"), pending["name"])
        self._arguments = []
        if kind == "custom":
            item = _custom_call_item(self._item_id(), *self._call, "", "in_progress")
        else:
            item = _function_call_item(self._item_id(), *self._call, "", "in_progress")
        out.append(self._event("response.output_item.added", output_index=index, item=item))
        if pending["arguments"]:
            out.extend(self._arguments_delta(pending["arguments"]))
        return out

    def _arguments_delta(self, fragment: str) -> list[dict[str, Any]]:
        self._arguments.append(fragment)
        if self._open is not None and self._open[0] == "custom":
            # The input is a string inside the JSON arguments: it is sent whole at the end.
            return []
        return [
            self._event(
                "response.function_call_arguments.delta",
                item_id=self._item_id(),
                output_index=self._open[-1],  # type: ignore[index]
                delta=fragment,
            )
        ]

    def _close_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for tool_index in self._tools.indexes():
            out.extend(self._open_pending(tool_index))
        return out + self._close()

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        if self._open[0] == "text":
            out = self._close_text()
        elif self._open[0] == "custom":
            out = self._close_custom()
        else:
            out = self._close_tool()
        self._open = None
        return out

    def _close_text(self) -> list[dict[str, Any]]:
        item_id, index, text = self._item_id(), self._open[-1], "".join(self._text)  # type: ignore[index]
        item = _message_item(item_id, text, self._item_status())
        self._output.append(item)
        return [
            self._event(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                part=_output_text(text),
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _close_tool(self) -> list[dict[str, Any]]:
        item_id, index = self._item_id(), self._open[-1]  # type: ignore[index]
        arguments = "".join(self._arguments)
        item = _function_call_item(item_id, *self._call, arguments, "completed")
        self._output.append(item)
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                name=self._call[1],
                arguments=arguments,
            ),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _close_custom(self) -> list[dict[str, Any]]:
        item_id, index = self._item_id(), self._open[-1]  # type: ignore[index]
        text = freeform_input("".join(self._arguments))
        item = _custom_call_item(item_id, *self._call, text, "completed")
        self._output.append(item)
        ids = {"item_id": item_id, "output_index": index}
        out = [self._event("response.custom_tool_call_input.delta", **ids, delta=text)]
        out.append(self._event("response.custom_tool_call_input.done", **ids, input=text))
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        return out


# =============================================================================
# Stored response -> chat history
# =============================================================================


def responses_output_to_chat_messages(
    response: dict[str, Any],
    *,
    request_body: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The conversation so far as chat messages, to store under the response's id.

    `history` is what was stored for the request's own `previous_response_id`,
    `request_body` the request that produced `response`: the result is history,
    then the request's input, then the response's output. The request's
    `instructions` are left out: a later request that names this response as its
    previous one brings its own.
    """
    messages = list(history or [])
    if request_body is not None:
        messages.extend(_input_to_chat(request_body.get("input")))
    output = [item for item in response.get("output") or [] if isinstance(item, dict)]
    messages.extend(_items_to_chat(output, param="output"))
    return messages
