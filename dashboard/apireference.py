"""The /v1 API reference page, built from the OpenAPI schema the gateway publishes at
/v1/openapi.json: every path and method in it is listed, with the request fields its
schema declares. The rules every endpoint shares (errors, rate limits, streaming,
media, idempotency) are written out in the template, next to DESIGN.md's tables."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from gateway.api import v1


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    tag: str
    summary: str
    fields: list[Field] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return (
            f"{self.method}-{self.path}".lower()
            .replace("/", "-")
            .replace("{", "")
            .replace("}", "")
            .replace(":", "")
        )


def _type_of(schema: dict[str, Any]) -> str:
    if "type" in schema:
        if schema["type"] == "array":
            return f"array of {_type_of(schema.get('items', {}))}"
        return str(schema["type"])
    options = schema.get("anyOf") or schema.get("oneOf") or []
    names = [_type_of(o) for o in options if o.get("type") != "null"]
    return " | ".join(dict.fromkeys(names)) or "object"


def _fields(operation: dict[str, Any]) -> list[Field]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema", {})
    required = set(schema.get("required", []))
    return [
        Field(name, _type_of(spec), name in required)
        for name, spec in schema.get("properties", {}).items()
    ]


def _schema() -> dict[str, Any]:
    # The /v1 NinjaAPI: its schema is what /v1/openapi.json serves.
    return v1.get_openapi_schema(path_prefix="/v1")


@functools.cache
def endpoints() -> list[Endpoint]:
    """Every documented /v1 operation, in the schema's order."""
    found = []
    for path, operations in _schema().get("paths", {}).items():
        for method, operation in operations.items():
            found.append(
                Endpoint(
                    method=method.upper(),
                    path=path.replace("{path:", "{"),
                    tag=(operation.get("tags") or ["other"])[0],
                    summary=operation.get("summary", ""),
                    fields=_fields(operation),
                )
            )
    return found


ERRORS = [
    (
        400,
        "invalid_request_error",
        "invalid_request",
        _("Bad JSON, or a missing or wrong field (param names it)."),
    ),
    (
        401,
        "authentication_error",
        "invalid_api_key",
        _("The key is missing, unknown or malformed."),
    ),
    (
        402,
        "insufficient_quota",
        "insufficient_quota",
        _(
            "The balance cannot cover the request, or the key's spend limit is reached (key_spend_limit_reached)."
        ),
    ),
    (
        403,
        "permission_error",
        "key_revoked",
        _(
            "The key is revoked, suspended or expired, or may not use this model (model_not_allowed)."
        ),
    ),
    (404, "invalid_request_error", "model_not_found", _("Unknown or disabled model.")),
    (
        413,
        "invalid_request_error",
        "request_too_large",
        _(
            "The body is over its endpoint's limit (JSON 32 MiB, embeddings 8 MiB, images and speech 1 MiB, transcription 50 MiB), also once decompressed."
        ),
    ),
    (
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        _("Over your plan's or your key's requests per minute; see Retry-After."),
    ),
    (
        429,
        "rate_limit_error",
        "concurrency_limit_exceeded",
        _(
            "Too many requests in flight at once for your account or this key; retry when one has finished."
        ),
    ),
    (500, "api_error", "internal_error", _("Something failed on our side.")),
    (502, "api_error", "upstream_error", _("Every route failed before any output.")),
    (503, "api_error", "no_active_provider_keys", _("No provider can serve the model right now.")),
    (504, "api_error", "upstream_timeout", _("The provider exceeded its time limit.")),
]
