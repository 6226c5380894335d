"""Fake OpenAI (and Azure OpenAI) upstream.

Shapes follow the API reference and the official SDK's types: chat completions (with
SSE chunks, the `stream_options.include_usage` usage chunk whose `choices` is empty,
tool-call deltas and `data: [DONE]`), the Responses API (object and the typed event
stream with `sequence_number`), embeddings (float or little-endian float32 base64),
image generation, speech, transcription (multipart) and the model list.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import time
from typing import Any

from .base import (
    _UNSET,
    CONTENT,
    HEAD,
    TAIL,
    FakeServer,
    Frame,
    RecordedRequest,
    Reply,
    Response,
    Route,
    Stream,
    json_response,
    random_id,
    sse,
)
from .media import audio_duration, mp3_bytes, png_bytes, wav_bytes

SPEECH_CHUNK = 4096  # bytes of audio per chunk or event of a speech stream

DEFAULT_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "text-embedding-3-small",
    "gpt-image-1",
    "dall-e-3",
    "tts-1",
    "whisper-1",
    "gpt-4o-transcribe",
]

_ERROR_TYPES = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}

_AZURE_FILTERS = {
    name: {"filtered": False, "severity": "safe"}
    for name in ("hate", "self_harm", "sexual", "violence")
}


def openai_error(
    status: int, message: str | None = None, *, code: Any = ..., param: Any = None
) -> dict:
    err_type, default_code, default_message = _ERROR_TYPES.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}"),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": err_type,
            "param": param,
            "code": default_code if code is ... else code,
        }
    }


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _embedding_vector(text: str, dims: int) -> list[float]:
    """Deterministic per input; multiples of 1/256 so float32 round-trips exactly."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(b - 128) / 256 for b in digest[:dims]]


class FakeOpenAI(FakeServer):
    """OpenAI at `base_url + "/v1"`; with `azure=True` the Azure OpenAI routes instead."""

    name = "fake-openai"
    default_key = "sk-test-openai"

    def __init__(
        self,
        *,
        expected_key: Any = _UNSET,
        azure: bool = False,
        deployments: dict[str, str] | None = None,
        api_version: str | None = None,
        models: list[str] | None = None,
    ) -> None:
        self.azure = azure
        self.deployments = dict(deployments or {})  # deployment name -> model it serves
        self.api_version = api_version  # None: any api-version accepted (but one is required)
        self.models = list(models or DEFAULT_MODELS)
        super().__init__(expected_key=expected_key)

    def reset(self) -> None:
        super().reset()
        self.embedding_dimensions = 16
        self.speech_seconds = 1.0
        self.transcription_seconds: float | None = None  # None: read from the uploaded audio
        self.transcription_language = "english"
        self.obfuscation = True  # the `obfuscation` padding field of stream events
        self.azure_filter_chunk = (
            True  # Azure's first stream chunk: choices [] + prompt_filter_results
        )
        self.stored_responses: dict[str, dict] = {}
        self.images: dict[str, bytes] = {}

    # ---- routing and auth ------------------------------------------------------------

    def routes(self) -> list[Route]:
        def r(method: str, pattern: str, handler: Any, auth: bool = True) -> Route:
            return Route(method, re.compile(pattern), handler, auth)

        endpoints = [
            ("POST", "/chat/completions", self._chat),
            ("POST", "/responses/compact", self._compact),
            ("POST", "/responses", self._responses),
            ("GET", "/responses/(?P<rid>[^/]+)", self._get_response),
            ("POST", "/embeddings", self._embeddings),
            ("POST", "/images/generations", self._images),
            ("POST", "/audio/speech", self._speech),
            ("POST", "/audio/transcriptions", self._transcriptions),
            ("POST", "/audio/translations", self._transcriptions),
            ("GET", "/models", self._models),
            ("GET", "/models/(?P<mid>[^/]+)", self._model),
        ]
        routes = [r("GET", r"/files/images/(?P<iid>[^/]+)\.png", self._image_file, auth=False)]
        if not self.azure:
            return routes + [r(m, "/v1" + p, h) for m, p, h in endpoints]
        deployment = (
            "(chat/completions|embeddings|images/generations|audio/speech|audio/transcriptions)"
        )
        routes += [
            r("POST", f"/openai/deployments/(?P<dep>[^/]+)/{deployment}", self._azure_deployment)
        ]
        routes += [r(m, "/openai/v1" + p, h) for m, p, h in endpoints]  # the v1 GA surface
        routes += [
            r("POST", "/openai/responses", self._azure_dated(self._responses)),
            r("GET", "/openai/models", self._azure_dated(self._models)),
        ]
        return routes

    def credential(self, req: RecordedRequest) -> str | None:
        if self.azure:
            return req.headers.get("api-key")
        return super().credential(req)

    def check_auth(self, req: RecordedRequest) -> Response | None:
        if self.valid_keys is None or self.credential(req) in self.valid_keys:
            return None
        if self.azure:
            message = (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                "provide a valid key for an active subscription and use a correct regional API "
                "endpoint for your resource."
            )
            return json_response({"error": {"code": "401", "message": message}}, 401)
        key = self.credential(req)
        if key is None:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return json_response(openai_error(401, message, code=None), 401)
        shown = key[:3] + "*" * 8 + key[-4:] if len(key) > 8 else key
        message = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        return json_response(openai_error(401, message), 401)

    def error_response(self, status: int, message: str | None = None) -> Response:
        if self.azure and status == 404:
            return json_response(
                {"error": {"code": "404", "message": message or "Resource not found"}}, 404
            )
        return json_response(openai_error(status, message), status)

    def not_found(self, req: RecordedRequest) -> Response:
        if self.azure:
            return self.error_response(404)
        return json_response(
            openai_error(404, f"Invalid URL ({req.method} {req.path})", code=None), 404
        )

    def response_headers(self) -> dict[str, str]:
        if self.azure:
            return {"apim-request-id": random_id("", 32), "x-request-id": random_id("", 32)}
        return {
            "x-request-id": random_id("req_", 32),
            "openai-version": "2020-10-01",
            "openai-processing-ms": "7",
            # As api.openai.com's Cloudflare front sends them (minus Secure and the
            # domain, so that a client that kept cookies would send them back here).
            "set-cookie": f"__cf_bm={random_id('', 43)}; path=/; HttpOnly; SameSite=None",
        }

    def _bad_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> Response:
        return json_response(openai_error(400, message, param=param, code=code), 400)

    def _api_version_error(self, req: RecordedRequest) -> Response | None:
        version = req.query.get("api-version")
        if not version or (self.api_version is not None and version != self.api_version):
            return self.error_response(404)
        return None

    def _azure_dated(self, handler: Any) -> Any:
        def wrapped(req: RecordedRequest, match: re.Match[str]) -> Response | Stream:
            return self._api_version_error(req) or handler(req, match)

        return wrapped

    def _azure_deployment(self, req: RecordedRequest, match: re.Match[str]) -> Response | Stream:
        bad = self._api_version_error(req)
        if bad is not None:
            return bad
        dep = match.group("dep")
        if self.deployments and dep not in self.deployments:
            message = (
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again."
            )
            return json_response({"error": {"code": "DeploymentNotFound", "message": message}}, 404)
        model = self.deployments.get(dep, dep)
        handler = {
            "chat/completions": self._chat,
            "embeddings": self._embeddings,
            "images/generations": self._images,
            "audio/speech": self._speech,
            "audio/transcriptions": self._transcriptions,
        }[match.group(2)]
        return handler(req, match, model=model)

    def _model_of(self, req: RecordedRequest, model: str | None) -> str | None:
        if model is not None:
            return model
        source = req.json if isinstance(req.json, dict) else req.form
        value = source.get("model") if isinstance(source, dict) else None
        return value if isinstance(value, str) and value else None

    # ---- usage -----------------------------------------------------------------------

    @staticmethod
    def chat_usage(reply: Reply) -> dict:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.total_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def responses_usage(reply: Reply) -> dict:
        return {
            "input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": reply.total_tokens,
        }

    def _obfuscation(self, payload: dict, body: dict) -> dict:
        options = body.get("stream_options") or {}
        if self.obfuscation and not self.azure and options.get("include_obfuscation", True):
            payload["obfuscation"] = random_id("", 8)
        return payload

    # ---- chat completions ------------------------------------------------------------

    def _chat(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response | Stream:
        body = req.json
        if not isinstance(body, dict):
            return self._bad_request("We could not parse the JSON body of your request.")
        model = self._model_of(req, model)
        if model is None:
            return self._bad_request("you must provide a model parameter")
        if not body.get("messages"):
            return self._bad_request(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        reply = self.next_reply()
        if self.echo_prompt:
            reply = Reply(text=_last_user_text(body["messages"]) or "(nothing)")
        if body.get("stream"):
            return self._chat_stream(body, model, reply)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
            "annotations": [],
        }
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": tc.id or random_id("call_"),
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                }
                for tc in reply.calls
            ]
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.stop,
        }
        result: dict[str, Any] = {
            "id": random_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        if self.azure:
            result["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}
            ]
            choice["content_filter_results"] = _AZURE_FILTERS
            del result["service_tier"]
        if self.include_usage:
            result["usage"] = self.chat_usage(reply)
        return json_response(result)

    def _chat_stream(self, body: dict, model: str, reply: Reply) -> Stream:
        usage_requested = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": random_id("chatcmpl-", 29),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        if self.azure:
            del base["service_tier"]

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            payload = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage_requested:
                payload["usage"] = None  # present and null on every chunk but the last
            return sse(self._obfuscation(payload, body))

        def frames() -> Any:
            if self.azure and self.azure_filter_chunk:
                yield Frame(
                    sse(
                        {
                            "choices": [],
                            "created": 0,
                            "id": "",
                            "model": "",
                            "object": "",
                            "prompt_filter_results": [
                                {"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}
                            ],
                        }
                    ),
                    HEAD,
                )
            first: dict[str, Any] = {
                "role": "assistant",
                "content": "" if reply.text else None,
                "refusal": None,
            }
            yield Frame(chunk(first), HEAD)
            for piece in reply.text_chunks():
                yield Frame(chunk({"content": piece}), CONTENT)
            for index, tc in enumerate(reply.calls):
                opener = {
                    "index": index,
                    "id": tc.id or random_id("call_"),
                    "type": "function",
                    "function": {"name": tc.name, "arguments": ""},
                }
                yield Frame(chunk({"tool_calls": [opener]}), HEAD)
                for fragment in tc.fragments():
                    yield Frame(
                        chunk(
                            {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                        ),
                        CONTENT,
                    )
            yield Frame(chunk({}, reply.stop), TAIL)
            if usage_requested and self.include_usage:
                yield Frame(
                    sse(
                        self._obfuscation(
                            {**base, "choices": [], "usage": self.chat_usage(reply)}, body
                        )
                    ),
                    TAIL,
                )
            yield Frame(b"data: [DONE]\n\n", TAIL)

        return Stream(
            frames(), error_frame=lambda: sse(openai_error(500, self.stream_error_message))
        )

    # ---- responses -------------------------------------------------------------------

    def _response_object(
        self, body: dict, model: str, rid: str, status: str, output: list, reply: Reply
    ) -> dict:
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": rid,
            "object": "response",
            "created_at": now,
            "status": status,
            "background": False,
            "completed_at": now if status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if status == "incomplete"
            else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": None,
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }
        if status in ("completed", "incomplete") and self.include_usage:
            obj["usage"] = self.responses_usage(reply)
        return obj

    @staticmethod
    def _message_item(item_id: str, text: str, status: str) -> dict:
        content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        return {
            "id": item_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    @staticmethod
    def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict:
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": call_id,
            "name": name,
        }

    def _compact(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response:
        """Codex's history compaction: the history as one opaque compaction item."""
        unknown = self._unknown_previous(req.json if isinstance(req.json, dict) else {})
        if unknown is not None:
            return unknown
        reply = self.next_reply()
        usage = {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.output_tokens,
            "total_tokens": reply.total_tokens,
        }
        item = {"type": "compaction", "id": random_id("cmp_"), "encrypted_content": "gAAAA-fake"}
        return json_response(
            {"id": random_id("resp_", 48), "object": "response.compaction", "output": [item],
             "usage": usage}
        )  # fmt: skip

    def _responses(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response | Stream:
        body = req.json
        if not isinstance(body, dict):
            return self._bad_request("We could not parse the JSON body of your request.")
        model = self._model_of(req, model)
        if model is None:
            return self._bad_request(
                "Missing required parameter: 'model'.", "model", "missing_required_parameter"
            )
        unknown = self._unknown_previous(body)
        if unknown is not None:
            return unknown
        reply = self.next_reply()
        rid = random_id("resp_", 48)
        msg_id = random_id("msg_", 48)
        calls = [(random_id("fc_", 48), tc.id or random_id("call_"), tc) for tc in reply.calls]
        final_status = "incomplete" if reply.stop == "length" else "completed"
        output = [self._message_item(msg_id, reply.text or "", "completed")] if reply.text else []
        output += [
            self._call_item(fid, cid, tc.name, tc.arguments, "completed") for fid, cid, tc in calls
        ]
        final = self._response_object(body, model, rid, final_status, output, reply)
        if body.get("store", True):
            self.stored_responses[rid] = final
        if not body.get("stream"):
            return json_response(final)

        seq = iter(range(1_000_000))

        def event(kind: str, payload: dict, frame_kind: str) -> Frame:
            data = {"type": kind, **payload, "sequence_number": next(seq)}
            return Frame(sse(data, kind), frame_kind)

        def frames() -> Any:
            in_progress = self._response_object(body, model, rid, "in_progress", [], reply)
            yield event("response.created", {"response": in_progress}, HEAD)
            yield event("response.in_progress", {"response": in_progress}, HEAD)
            index = 0
            if reply.text:
                ids = {"item_id": msg_id, "output_index": index}
                empty = {
                    "id": msg_id,
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
                yield event(
                    "response.output_item.added", {"output_index": index, "item": empty}, HEAD
                )
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield event(
                    "response.content_part.added", {**ids, "content_index": 0, "part": part}, HEAD
                )
                for piece in reply.text_chunks():
                    delta = self._obfuscation(
                        {**ids, "content_index": 0, "delta": piece, "logprobs": []}, body
                    )
                    yield event("response.output_text.delta", delta, CONTENT)
                done = {**ids, "content_index": 0, "text": reply.text, "logprobs": []}
                yield event("response.output_text.done", done, TAIL)
                part = {**part, "text": reply.text}
                yield event(
                    "response.content_part.done", {**ids, "content_index": 0, "part": part}, TAIL
                )
                item = self._message_item(msg_id, reply.text or "", "completed")
                yield event(
                    "response.output_item.done", {"output_index": index, "item": item}, TAIL
                )
                index += 1
            for fid, cid, tc in calls:
                ids = {"item_id": fid, "output_index": index}
                item = self._call_item(fid, cid, tc.name, "", "in_progress")
                yield event(
                    "response.output_item.added", {"output_index": index, "item": item}, HEAD
                )
                for fragment in tc.fragments():
                    delta = self._obfuscation({**ids, "delta": fragment}, body)
                    yield event("response.function_call_arguments.delta", delta, CONTENT)
                done = {**ids, "name": tc.name, "arguments": tc.arguments}
                yield event("response.function_call_arguments.done", done, TAIL)
                item = self._call_item(fid, cid, tc.name, tc.arguments, "completed")
                yield event(
                    "response.output_item.done", {"output_index": index, "item": item}, TAIL
                )
                index += 1
            yield event(f"response.{final_status}", {"response": final}, TAIL)

        def error_frame() -> bytes:
            payload = {
                "type": "error",
                "code": "server_error",
                "message": self.stream_error_message
                or "The server had an error while processing your request. Sorry about that!",
                "param": None,
                "sequence_number": next(seq),
            }
            return sse(payload, "error")

        return Stream(frames(), error_frame=error_frame)

    def _unknown_previous(self, body: dict) -> Response | None:
        """OpenAI resolves `previous_response_id` among the responses stored under the
        account: any key of it, whoever made them."""
        previous = body.get("previous_response_id")
        if previous is None or previous in self.stored_responses:
            return None
        return self._bad_request(
            f"Previous response with id '{previous}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )

    def _get_response(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        stored = self.stored_responses.get(match.group("rid"))
        if stored is None:
            message = f"Response with id '{match.group('rid')}' not found."
            return json_response(openai_error(404, message, code=None), 404)
        return json_response(stored)

    # ---- embeddings ------------------------------------------------------------------

    def _embeddings(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response:
        body = req.json
        if not isinstance(body, dict) or "input" not in body:
            return self._bad_request(
                "Missing required parameter: 'input'.", "input", "missing_required_parameter"
            )
        model = self._model_of(req, model)
        if model is None:
            return self._bad_request("you must provide a model parameter")
        raw = body["input"]
        # A string, a list of strings, a list of token ids, or a list of token-id lists.
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs = [raw]
        else:
            inputs = list(raw)
        if not inputs or any(item in ("", []) for item in inputs):
            return self._bad_request(
                "'$.input' is invalid. Please check the API reference.", "input"
            )
        dims = int(body.get("dimensions") or self.embedding_dimensions)
        encoding = body.get("encoding_format") or "float"
        reply = self.next_reply()
        data = []
        for index, item in enumerate(inputs):
            vector = _embedding_vector(str(item), dims)
            if encoding == "base64":
                value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            else:
                value = vector
            data.append({"object": "embedding", "index": index, "embedding": value})
        result: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if self.include_usage:
            result["usage"] = {
                "prompt_tokens": reply.prompt_tokens,
                "total_tokens": reply.prompt_tokens,
            }
        return json_response(result)

    @staticmethod
    def embedding_for(text: str, dims: int = 16) -> list[float]:
        """The vector the fake returns for `text` (for assertions)."""
        return _embedding_vector(text, dims)

    # ---- images ----------------------------------------------------------------------

    def _images(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response:
        body = req.json
        if not isinstance(body, dict) or not body.get("prompt"):
            return self._bad_request(
                "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
            )
        model = self._model_of(req, model) or "dall-e-2"
        size = body.get("size") or "1024x1024"
        sized = re.fullmatch(r"(\d+)x(\d+)", size)
        if size != "auto" and not sized:
            return self._bad_request(
                f"Invalid value: '{size}'. Supported values are: '1024x1024', ...", "size"
            )
        width, height = (int(sized.group(1)), int(sized.group(2))) if sized else (1024, 1024)
        png = png_bytes(width, height)
        gpt_image = model.startswith("gpt-image")
        # dall-e models answer with URLs unless asked for b64_json; gpt-image always b64.
        response_format = body.get("response_format") or ("b64_json" if gpt_image else "url")
        reply = self.next_reply()
        data = []
        for _ in range(int(body.get("n") or 1)):
            if response_format == "url" and not gpt_image:
                image_id = random_id("img-")
                self.images[image_id] = png
                item: dict[str, Any] = {"url": self.url(f"/files/images/{image_id}.png")}
            else:
                item = {"b64_json": base64.b64encode(png).decode()}
            if model == "dall-e-3":
                item["revised_prompt"] = body["prompt"]
            data.append(item)
        result: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            result.update(
                background="opaque",
                output_format="png",
                quality=body.get("quality", "high"),
                size=size,
            )
            if self.include_usage:
                result["usage"] = {
                    "input_tokens": reply.prompt_tokens,
                    "input_tokens_details": {"text_tokens": reply.prompt_tokens, "image_tokens": 0},
                    "output_tokens": reply.output_tokens,
                    "total_tokens": reply.total_tokens,
                }
        return json_response(result)

    def _image_file(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        png = self.images.get(match.group("iid"))
        if png is None:
            return Response(404, b"not found", "text/plain")
        return Response(200, png, "image/png")

    # ---- audio -----------------------------------------------------------------------

    def _speech(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response:
        body = req.json
        if not isinstance(body, dict) or not body.get("input"):
            return self._bad_request(
                "Missing required parameter: 'input'.", "input", "missing_required_parameter"
            )
        if not body.get("voice"):
            return self._bad_request(
                "Missing required parameter: 'voice'.", "voice", "missing_required_parameter"
            )
        fmt = body.get("response_format") or "mp3"
        if fmt not in _SPEECH_TYPES:
            return self._bad_request(f"Invalid value: '{fmt}'.", "response_format")
        if fmt == "wav":
            audio = wav_bytes(self.speech_seconds, sample_rate=24000)
        elif fmt == "pcm":
            audio = bytes(2 * round(24000 * self.speech_seconds))  # raw 24 kHz 16-bit LE silence
        else:  # opus/aac/flac are stood in for by MP3 frames under their content type
            audio = mp3_bytes(self.speech_seconds)
        # Like OpenAI, the audio is sent as it is made: chunked, or as SSE events.
        pieces = [audio[i : i + SPEECH_CHUNK] for i in range(0, len(audio), SPEECH_CHUNK)]
        if body.get("stream_format") != "sse":
            return Stream([Frame(p) for p in pieces], content_type=_SPEECH_TYPES[fmt])
        events = [
            {"type": "speech.audio.delta", "audio": base64.b64encode(p).decode()} for p in pieces
        ]
        tokens = max(len(body["input"]) // 4, 1)
        usage = {
            "input_tokens": tokens,
            "output_tokens": len(pieces),
            "total_tokens": tokens + len(pieces),
        }
        events.append({"type": "speech.audio.done", "usage": usage})
        return Stream([Frame(sse(event)) for event in events])

    def _transcriptions(
        self, req: RecordedRequest, match: re.Match[str], model: str | None = None
    ) -> Response:
        if "file" not in req.files:
            return self._bad_request(
                "Missing required parameter: 'file'.", "file", "missing_required_parameter"
            )
        model = self._model_of(req, model)
        if model is None:
            return self._bad_request(
                "Missing required parameter: 'model'.", "model", "missing_required_parameter"
            )
        _filename, _ctype, audio = req.files["file"]
        seconds = self.transcription_seconds
        if seconds is None:
            seconds = audio_duration(audio)
        if seconds is None:
            message = (
                "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', "
                "'mpga', 'oga', 'ogg', 'wav', 'webm']"
            )
            return self._bad_request(message, "file")
        seconds = round(seconds, 3)
        reply = self.next_reply()
        text = reply.text or ""
        fmt = req.form.get("response_format") or "json"
        by_tokens = "transcribe" in model  # gpt-4o(-mini)-transcribe bill tokens, whisper-1 seconds
        if by_tokens:
            usage: dict[str, Any] = {
                "type": "tokens",
                "input_tokens": reply.prompt_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": reply.prompt_tokens},
                "output_tokens": reply.output_tokens,
                "total_tokens": reply.total_tokens,
            }
        else:
            usage = {"type": "duration", "seconds": seconds}
        if fmt == "text":
            return Response(200, (text + "\n").encode(), "text/plain; charset=utf-8")
        if fmt in ("srt", "vtt"):
            end = time.strftime("%H:%M:%S", time.gmtime(seconds))
            if fmt == "srt":
                doc = f"1\n00:00:00,000 --> {end},000\n{text}\n\n"
            else:
                doc = f"WEBVTT\n\n00:00:00.000 --> {end}.000\n{text}\n\n"
            return Response(200, doc.encode(), "text/plain; charset=utf-8")
        if fmt == "verbose_json":
            segment = {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": seconds,
                "text": text,
                "tokens": list(range(50364, 50364 + max(1, len(text.split())))),
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
            result: dict[str, Any] = {
                "task": "transcribe",
                "language": self.transcription_language,
                "duration": seconds,
                "text": text,
                "segments": [segment],
            }
            granularities = [
                v for k, v in req.form.items() if k.startswith("timestamp_granularities")
            ]
            if "word" in granularities:
                words = text.split()
                step = seconds / max(1, len(words))
                result["words"] = [
                    {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
                    for i, w in enumerate(words)
                ]
        else:
            result = {"text": text}
        if self.include_usage:
            result["usage"] = usage
        return json_response(result)

    # ---- models ----------------------------------------------------------------------

    def _model_entry(self, model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": 1715367049, "owned_by": "system"}

    def _models(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        return json_response(
            {"object": "list", "data": [self._model_entry(m) for m in self.models]}
        )

    def _model(self, req: RecordedRequest, match: re.Match[str]) -> Response:
        model_id = match.group("mid")
        if model_id not in self.models:
            message = f"The model '{model_id}' does not exist"
            return json_response(openai_error(404, message, param="model"), 404)
        return json_response(self._model_entry(model_id))


class FakeAzureOpenAI(FakeOpenAI):
    """Azure OpenAI: `/openai/deployments/{deployment}/...?api-version=...` with an `api-key`
    header (plus the `/openai/v1/...` surface)."""

    name = "fake-azure"
    default_key = "azure-test-key"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("azure", True)
        super().__init__(**kwargs)


__all__ = ["FakeAzureOpenAI", "FakeOpenAI", "openai_error"]
