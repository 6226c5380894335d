"""Errors in the caller's dialect (DESIGN.md's table): OpenAI's shape for /v1 paths,
Anthropic's for /v1/messages. Every response carries x-request-id."""

from __future__ import annotations

import re
from typing import Any

import orjson
import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

OPENAI = "openai"
ANTHROPIC = "anthropic"

_MESSAGES_PATH = re.compile(r"^/(?:api/)?v1/messages(?:/|$)")


def dialect_for_path(path: str) -> str:
    """Anthropic's error shape on the Messages API's paths, OpenAI's everywhere else."""
    return ANTHROPIC if _MESSAGES_PATH.match(path) else OPENAI


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self, dialect: str) -> dict[str, Any]:
        if dialect == ANTHROPIC:
            return {
                "type": "error",
                "error": {
                    "type": _ANTHROPIC_TYPES.get(self.status, "api_error"),
                    "message": self.message,
                },
            }
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self, dialect: str, request_id: str) -> HttpResponse:
        response = HttpResponse(
            orjson.dumps(self.body(dialect)), status=self.status, content_type="application/json"
        )
        response["x-request-id"] = request_id
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(
    message: str, *, param: str | None = None, code: str = "invalid_request"
) -> GatewayError:
    return GatewayError(400, "invalid_request_error", code, message, param=param)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "authentication_error", "invalid_api_key", message)


def forbidden(code: str, message: str) -> GatewayError:
    return GatewayError(403, "permission_error", code, message)


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404, "invalid_request_error", "model_not_found",
        f"The model '{model}' does not exist or you do not have access to it.", param="model",
    )  # fmt: skip


def too_large(message: str) -> GatewayError:
    return GatewayError(413, "invalid_request_error", "request_too_large", message)


def upstream_failed(
    message: str = "Every upstream route failed before producing output.",
    *,
    headers: dict[str, str] | None = None,
) -> GatewayError:
    return GatewayError(502, "api_error", "upstream_error", message, headers=headers)


def client_gone() -> GatewayError:
    """Nobody reads this: the client left before anything was sent upstream. It is
    what the request's usage record says (status 499, nothing charged)."""
    return GatewayError(
        499, "api_error", "client_disconnected", "The client went away before the request was sent."
    )


def no_keys() -> GatewayError:
    return GatewayError(
        503, "api_error", "no_active_provider_keys", "No active provider keys available"
    )


def upstream_timeout() -> GatewayError:
    return GatewayError(
        504, "api_error", "upstream_timeout", "The upstream did not answer in time."
    )


def internal() -> GatewayError:
    return GatewayError(
        500, "api_error", "internal_error", "The gateway failed to handle this request."
    )


def unknown_url(method: str, path: str) -> GatewayError:
    return GatewayError(
        404, "invalid_request_error", "unknown_url", f"Unknown request URL: {method} {path}."
    )


def method_not_allowed(method: str, path: str, allowed: str) -> GatewayError:
    return GatewayError(
        405, "invalid_request_error", "method_not_allowed",
        f"{method} is not allowed on {path} (allowed: {allowed}).",
        headers={"allow": allowed},
    )  # fmt: skip


# A store the gateway needs to account for a request is unreachable: a 503, not a crash.
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
    InterfaceError,
)


def service_unavailable() -> GatewayError:
    """A store the gateway needs to account for a request (Redis, the database) is
    unreachable: refuse rather than serve what cannot be charged."""
    return GatewayError(
        503, "api_error", "service_unavailable",
        "The service is temporarily unavailable and nothing was charged; retry in a few "
        "seconds.",
        headers={"retry-after": "5"},
    )  # fmt: skip


def websocket_not_supported() -> GatewayError:
    return GatewayError(
        426, "invalid_request_error", "websocket_not_supported",
        "The /v1 API speaks HTTP: send POST requests (streams are server-sent events). "
        "WebSocket mode is not available.",
        headers={"upgrade": "HTTP/1.1"},
    )  # fmt: skip


def model_not_supported(model_id: str, why: str) -> GatewayError:
    return invalid(f"The model '{model_id}' {why}.", param="model", code="model_not_supported")
