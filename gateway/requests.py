"""Reading and checking request bodies, with OpenAI-style 400s naming the field."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest

from gateway import errors

MAX_JSON_BODY = 32 * 1024 * 1024  # bytes; vision requests carry base64 images


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_JSON_BODY:
        raise errors.too_large(f"The request body is larger than {MAX_JSON_BODY // 2**20} MiB.")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid(
            f"We could not parse the JSON body of your request ({exc.args[0]}).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise errors.invalid("The request body must be a JSON object.", code="invalid_json")
    return body


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid(
            f"Invalid type for '{name}': expected a number, but got {type(value).__name__}.",
            param=name,
            code="invalid_type",
        )
    if not low <= value <= high:
        raise errors.invalid(
            f"Invalid value for '{name}': {value} is not between {low:g} and {high:g}.",
            param=name,
            code="invalid_value",
        )


def positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.invalid(
            f"Invalid value for '{name}': expected a positive integer.",
            param=name,
            code="invalid_value",
        )


def boolean(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise errors.invalid(
            f"Invalid type for '{name}': expected a boolean, but got {type(value).__name__}.",
            param=name,
            code="invalid_type",
        )


def sampling(body: dict[str, Any]) -> None:
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    boolean(body, "stream")


_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def chat_body(body: dict[str, Any]) -> None:
    """The checks every upstream would make, made before any money moves."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise errors.invalid("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if messages is None:
        raise errors.invalid("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise errors.invalid(
            "Invalid type for 'messages': expected an array.", param="messages", code="invalid_type"
        )
    if not messages:
        raise errors.invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise errors.invalid(
                f"Invalid type for 'messages[{index}]': expected an object.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
        if message.get("role") not in _ROLES:
            raise errors.invalid(
                f"Invalid value for 'messages[{index}].role': expected one of "
                f"{', '.join(sorted(_ROLES))}.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
    sampling(body)
    positive_int(body, "max_tokens")
    positive_int(body, "max_completion_tokens")
    positive_int(body, "n")
    for name in ("tools", "stop"):
        value = body.get(name)
        if name == "tools" and value is not None and not isinstance(value, list):
            raise errors.invalid(
                "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type"
            )
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise errors.invalid(
            "Invalid type for 'stream_options': expected an object.",
            param="stream_options",
            code="invalid_type",
        )
