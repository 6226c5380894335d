"""/v1/responses: the OpenAI Responses API on every chat model.

Requests are translated to chat completions and written back as a Response object or
its event stream. The gateway keeps stored responses itself, as the chat messages of
the conversation so far, so `previous_response_id` works whatever the upstream; a
stored response belongs to the user whose key created it, and is invisible to anyone
else. A response is stored once its body exists and before its last bytes reach the
client, so a request that chains on it right away always finds it.

Forwarded to an upstream that speaks the Responses API, a request is still answered
404 for a `previous_response_id` the gateway has not kept for the caller: the
upstream would resolve it under the operator's key, whoever made it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from gateway import errors, validation
from gateway.calls import ChatCall, metering_body, speaks
from gateway.dialects import NativeEmitter, ResponsesEmitter
from gateway.errors import OPENAI, GatewayError
from gateway.relay import Endpoint, Stream
from gateway.stored_responses import Previous, ResponseKeeper, previous_response
from gateway.upstream import Attempt
from providers.catalogue import ModelInfo
from providers.translation import TranslationError, TranslationNotes, responses_request_to_chat

RESPONSES = "responses"


def to_chat(
    body: dict[str, Any],
    history: list[dict[str, Any]] | None,
    notes: TranslationNotes | None = None,
) -> dict[str, Any]:
    try:
        return responses_request_to_chat(body, history=history, notes=notes)
    except TranslationError as exc:
        raise errors.invalid(exc.message, param=exc.param) from None


def not_found(response_id: str, *, param: str | None = None) -> GatewayError:
    what = "Previous response" if param else "Response"
    return GatewayError(
        404, "invalid_request_error", "previous_response_not_found" if param else "not_found",
        f"{what} with id '{response_id}' not found.", param=param,
    )  # fmt: skip


async def owned_previous(body: dict[str, Any], user_id: int, *, native: bool) -> Previous | None:
    """The caller's own response named by `previous_response_id`, if the body names
    one. An id the gateway has not kept for this caller is a 404 and never reaches an
    upstream: one that speaks the Responses API would resolve it under the operator's
    key, shared by every customer."""
    response_id = body.get("previous_response_id")
    if response_id is None:
        return None
    previous = await previous_response(response_id, user_id)
    if previous is None:
        raise not_found(response_id, param="previous_response_id")
    if previous.messages is None and not native:
        raise errors.invalid(
            f"Response '{response_id}' can only be continued on a model served by the "
            "upstream's own Responses API, where it was made.",
            param="previous_response_id",
            code="previous_response_not_portable",
        )
    return previous


class ResponsesCall(ChatCall):
    def __init__(self, body: dict[str, Any], user_id: int) -> None:
        super().__init__(body=body, chat_body={}, emitter=None)  # type: ignore[arg-type]
        self.user_id = user_id
        self.keeper: ResponseKeeper | None = None
        self.stream_state: Stream | None = None

    async def prepare(self, model: ModelInfo) -> None:
        native = speaks(model, RESPONSES)
        previous = await owned_previous(self.body, self.user_id, native=native)
        history = previous.messages if previous else None
        if self.body.get("store") is not False:
            self.keeper = ResponseKeeper(user_id=self.user_id, body=self.body, previous=previous)
        if native:
            self.native, self.emitter = RESPONSES, NativeEmitter(OPENAI)
            # Forwarded as written: nothing is dropped, the translation only meters.
            self.chat_body = metering_body(self.body, lambda: to_chat(self.body, history))
        else:
            self.chat_body = self.to_chat(history)
            self.emitter = self._emitter(model)
        await super().prepare(model)

    def to_chat(self, history: list[dict[str, Any]] | None) -> dict[str, Any]:
        return to_chat(self.body, history, self.notes)

    def _emitter(self, model: ModelInfo) -> ResponsesEmitter:
        return ResponsesEmitter(
            response_id="resp_" + self.request_id.removeprefix("req_"),
            model=model.public_id,
            request_body=self.body,
            on_done=self.keeper.start if self.keeper else None,
        )

    def answered(self, data: dict[str, Any]) -> None:
        if self.keeper is not None:
            self.keeper.start(data)

    def streamed(self, attempt: Attempt) -> Stream:
        self.stream_state = super().streamed(attempt)
        return self.stream_state

    async def before_last_bytes(self) -> None:
        if self.keeper is None:
            return
        final = self.stream_state.decoder.final if self.stream_state else None
        if final is not None:
            self.keeper.start(final)
        await self.keeper.wait()


async def parse(request: HttpRequest, key: KeySnapshot) -> ResponsesCall:
    body = await validation.json_body(request)
    validation.responses_body(body)
    return ResponsesCall(body, key.user_id)


create = Endpoint("responses", OPENAI, parse)
