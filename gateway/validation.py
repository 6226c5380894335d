"""Reading and checking request bodies, with OpenAI-style 400s naming the field."""

from __future__ import annotations

import asyncio
import gzip
import io
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import zstandard
from django.http import HttpRequest

from core import jsonshape
from gateway import errors, limits, metering
from gateway.errors import GatewayError
from gateway.limits import MAX_JSON_BODY

# Bodies up to this size are parsed on the event loop (well under a millisecond);
# larger ones in a worker thread, so that no request stalls every other one.
INLINE_MAX = 256 * 1024  # bytes
# A compressed body may always inflate to COMPRESSION_FLOOR; beyond it, to at most
# COMPRESSION_RATIO times its compressed size (and never beyond the endpoint's limit).
# Real request bodies compress 2-3x (Codex CLI's, measured), a bomb thousands of
# times: 3 KB of zstd would otherwise become 32 MiB.
COMPRESSION_FLOOR = 1024 * 1024  # bytes
COMPRESSION_RATIO = 64
ZSTD_MAX_WINDOW = 8 * 1024 * 1024  # bytes of memory a zstd frame may ask for (level 19: 8 MiB)

# Two threads: parsing holds the GIL, so more would not parse faster, and the pool
# bounds how many large bodies are inflated and parsed at once.
_parsers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nexai-json")


def _unsupported(encoding: str) -> GatewayError:
    return errors.invalid(
        f"Unsupported Content-Encoding '{encoding}': send the body as it is, or "
        "compressed with zstd, gzip or deflate.",
        code="unsupported_content_encoding",
    )


def _inflate(raw: bytes, encoding: str, cap: int) -> bytes | None:
    """The body as sent before `Content-Encoding` (Codex CLI sends zstd), decompressed
    as a stream that stops past `cap` bytes: None when it would be longer."""
    try:
        if encoding == "zstd":
            decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
            reader = decompressor.stream_reader(io.BytesIO(raw), read_across_frames=True)
            data = reader.read(cap + 1)
        elif encoding in ("gzip", "x-gzip"):
            data = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(cap + 1)
        elif encoding == "deflate":
            data = zlib.decompressobj().decompress(raw, cap + 1)
        else:
            raise _unsupported(encoding)
    except (zstandard.ZstdError, OSError, EOFError, zlib.error):
        raise errors.invalid(
            f"The body could not be decompressed as {encoding}.", code="invalid_body_encoding"
        ) from None
    return data if len(data) <= cap else None


def _inflated(raw: bytes, encoding: str, limit: int) -> bytes:
    """The whole decompressed body, or the 413 that says which bound it passed."""
    bound = min(limit, max(COMPRESSION_FLOOR, COMPRESSION_RATIO * len(raw)))
    data = _inflate(raw, encoding, bound)
    if data is not None:
        return data
    if bound == limit:
        raise errors.too_large(limits.too_large_message(limit) + " (decompressed)")
    raise errors.too_large(
        f"The {encoding} body decompresses to more than {COMPRESSION_RATIO} times its size "
        f"(past {COMPRESSION_FLOOR // 2**20} MiB): send it uncompressed."
    )


def _parse(data: bytes) -> dict[str, Any]:
    try:
        body = jsonshape.loads(data)
    except jsonshape.ShapeError as exc:
        raise errors.invalid(exc.message, code="invalid_json") from None
    except orjson.JSONDecodeError as exc:
        raise errors.invalid(
            f"We could not parse the JSON body of your request ({exc.args[0]}).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise errors.invalid("The request body must be a JSON object.", code="invalid_json")
    return body


async def _off_loop(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.get_running_loop().run_in_executor(_parsers, work)


async def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, within the endpoint's size limit (decompressed too),
    nesting depth and element counts (core.jsonshape); a 400 or 413 otherwise.
    Authentication has been checked before this is called, and a large body is read
    in a worker thread."""
    raw = request.body
    limit = limits.limit_for(request.path) or MAX_JSON_BODY
    if len(raw) > limit:
        raise errors.too_large(limits.too_large_message(limit))
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) <= INLINE_MAX:
            return _parse(raw)
        return await _off_loop(lambda: _parse(raw))
    small = _inflate(raw, encoding, INLINE_MAX)
    if small is not None:
        return _parse(small)
    return await _off_loop(lambda: _parse(_inflated(raw, encoding, limit)))


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


def _check(body: dict[str, Any], name: str, valid: bool, message: str, code: str) -> None:
    if not valid:
        raise errors.invalid(message, param=name, code=code)


def positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    valid = value is None or (type(value) is int and value >= 1)
    _check(
        body,
        name,
        valid,
        f"Invalid value for '{name}': expected a positive integer.",
        "invalid_value",
    )


# -- the upstream APIs' own limits ---------------------------------------------------
# A request beyond them would be refused upstream, or worse served and charged (an
# OpenAI-compatible upstream that ignores `n` still bills the reservation's bound):
# refused here, before admission, with OpenAI's wording and `param`.
MAX_CHOICES = 128  # chat `n` (OpenAI)
MAX_STOP_SEQUENCES = 4  # chat `stop` (OpenAI)
MAX_TOOLS = 128  # functions in `tools` (OpenAI)
MAX_TOP_LOGPROBS = 20  # chat `top_logprobs` (OpenAI)
MAX_EMBEDDING_INPUTS = 2048  # strings, or token ids, or token arrays, in one `input`
MAX_IMAGES = 10  # images `n` (OpenAI)
MAX_IMAGE_PROMPT = 32_000  # characters (OpenAI's GPT image models)
MAX_IMAGE_EDGE = 3840  # pixels (OpenAI: at most 3840x2160)
MAX_SPEECH_INPUT = 4096  # characters (OpenAI)


def at_most(body: dict[str, Any], name: str, maximum: int) -> None:
    """`name`, when given, is a positive integer no larger than `maximum`."""
    positive_int(body, name)
    value = body.get(name)
    if value is not None and value > maximum:
        raise errors.invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {maximum}, "
            f"but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )


def _items_at_most(value: Any, name: str, maximum: int) -> None:
    if isinstance(value, list) and len(value) > maximum:
        raise errors.invalid(
            f"Invalid '{name}': array too long. Expected an array with maximum length "
            f"{maximum}, but got an array with length {len(value)} instead.",
            param=name,
            code="array_above_max_length",
        )


def _text_at_most(value: Any, name: str, maximum: int) -> None:
    if isinstance(value, str) and len(value) > maximum:
        raise errors.invalid(
            f"Invalid '{name}': string too long. Expected a string with maximum length "
            f"{maximum}, but got a string with length {len(value)} instead.",
            param=name,
            code="string_above_max_length",
        )


def boolean(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    valid = value is None or isinstance(value, bool)
    message = f"Invalid type for '{name}': expected a boolean, but got {type(value).__name__}."
    _check(body, name, valid, message, "invalid_type")


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
    at_most(body, "n", MAX_CHOICES)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise errors.invalid(
            "Invalid type for 'tools': expected an array.", param="tools", code="invalid_type"
        )
    _items_at_most(tools, "tools", MAX_TOOLS)
    _items_at_most(body.get("stop"), "stop", MAX_STOP_SEQUENCES)
    _number(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise errors.invalid(
            "Invalid type for 'stream_options': expected an object.",
            param="stream_options",
            code="invalid_type",
        )


def missing(name: str) -> GatewayError:
    return errors.invalid(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def unsupported(name: str, message: str) -> GatewayError:
    return errors.invalid(message, param=name, code="unsupported_parameter")


# -- Anthropic Messages ----------------------------------------------------------------


def messages_invalid(param: str, message: str) -> GatewayError:
    # Anthropic's 400s name the field at the start of the message ("max_tokens: Field
    # required"); its error body has no separate param.
    return errors.invalid(f"{param}: {message}", param=param)


def messages_body(body: dict[str, Any], *, count_only: bool = False) -> None:
    for name in ("model", "messages") if count_only else ("model", "max_tokens", "messages"):
        if name not in body:
            raise messages_invalid(name, "Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise messages_invalid("model", "Input should be a non-empty string")
    if not count_only:
        max_tokens = body["max_tokens"]
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise messages_invalid("max_tokens", "Input should be a positive integer")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise messages_invalid("messages", "Input should be a valid list")
    if not messages:
        raise messages_invalid("messages", "at least one message is required")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise messages_invalid("stream", "Input should be a valid boolean")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 1
    ):
        raise messages_invalid("temperature", "Input should be a number between 0 and 1")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise messages_invalid("stop_sequences", "Input should be a list of strings")


# -- Responses -------------------------------------------------------------------------


def responses_body(body: dict[str, Any]) -> None:
    sampling(body)
    boolean(body, "store")
    positive_int(body, "max_output_tokens")
    if body.get("background") is True:
        raise errors.invalid(
            "Background responses are not supported.", param="background", code="unsupported_value"
        )
    if body.get("conversation") is not None:
        raise errors.invalid(
            "Conversations are not supported; chain responses with previous_response_id.",
            param="conversation",
            code="unsupported_parameter",
        )
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise errors.invalid(
            "Invalid type for 'previous_response_id': expected a string.",
            param="previous_response_id",
            code="invalid_type",
        )
    if body.get("input") is None and previous is None:
        raise errors.invalid("Missing required parameter: 'input'.", param="input")


# -- embeddings, images, speech --------------------------------------------------------


def _embedding_input_tokens(value: Any, count: Callable[[str], int]) -> int:
    """Tokens in an embeddings input (a string, strings, token ids, lists of token
    ids), each text counted by `count`; raises the 400 for anything else."""
    if isinstance(value, str) and value:
        return count(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return len(value)
        total = 0
        for item in value:
            if isinstance(item, str) and item:
                total += count(item)
            elif isinstance(item, list) and item and all(isinstance(v, int) for v in item):
                total += len(item)
            else:
                break
        else:
            return total
    raise errors.invalid(
        "Invalid 'input': expected a non-empty string, an array of non-empty strings, or "
        "token arrays.",
        param="input",
        code="invalid_value",
    )


def embeddings_body(body: dict[str, Any]) -> int:
    """Checks an embeddings request; returns the upper bound of its input tokens (UTF-8
    bytes: a byte-level BPE token covers at least one), what it is reserved at and
    charged for when the upstream reports no usage."""
    if "input" not in body:
        raise missing("input")
    _items_at_most(body["input"], "input", MAX_EMBEDDING_INPUTS)
    bound = _embedding_input_tokens(body["input"], metering.tokens_bound)
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise errors.invalid(
            "Invalid value for 'encoding_format': expected 'float' or 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    positive_int(body, "dimensions")
    return bound


def images_body(body: dict[str, Any]) -> tuple[int, str | None]:
    """Checks an image generation request; returns (images asked for, size)."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise missing("prompt")
    _text_at_most(prompt, "prompt", MAX_IMAGE_PROMPT)
    at_most(body, "n", MAX_IMAGES)
    size = body.get("size")
    if size is not None and not isinstance(size, str):
        raise errors.invalid(
            "Invalid type for 'size': expected a string.", param="size", code="invalid_type"
        )
    if size is not None and not _image_size(size):
        raise errors.invalid(
            f"Invalid value for 'size': '{size[:40]}'. Expected 'auto' or WIDTHxHEIGHT in "
            f"pixels (e.g. '1024x1024'), each at most {MAX_IMAGE_EDGE}.",
            param="size",
            code="invalid_value",
        )
    if body.get("response_format") not in (None, "url", "b64_json"):
        raise errors.invalid(
            "Invalid value for 'response_format': expected 'url' or 'b64_json'.",
            param="response_format",
            code="invalid_value",
        )
    if body.get("stream") is True:
        raise unsupported("stream", "Streaming image generation is not supported yet.")
    return body.get("n") or 1, size


def _image_size(size: str) -> bool:
    """'auto', or WIDTHxHEIGHT within what any image model renders. Which sizes a
    model takes is the catalogue's: a size-keyed price (images._priced_size)."""
    if size == "auto":
        return True
    width, x, height = size.partition("x")
    return bool(
        x and width.isdigit() and height.isdigit()
        and 0 < int(width) <= MAX_IMAGE_EDGE and 0 < int(height) <= MAX_IMAGE_EDGE
    )  # fmt: skip


def speech_body(body: dict[str, Any]) -> int:
    """Checks a speech request; returns the characters to be spoken."""
    text = body.get("input")
    if not isinstance(text, str) or not text:
        raise missing("input")
    _text_at_most(text, "input", MAX_SPEECH_INPUT)
    _number(body, "speed", 0.25, 4)
    if body.get("stream_format") not in (None, "audio", "sse"):
        raise errors.invalid(
            "Invalid value for 'stream_format': expected 'audio' or 'sse'.",
            param="stream_format",
            code="invalid_value",
        )
    boolean(body, "stream")
    return len(text)
