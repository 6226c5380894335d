from __future__ import annotations

from django.http import HttpRequest

from accounts.keycache import KeySnapshot, Refusal, aauthenticate
from gateway.errors import GatewayError, forbidden, unauthorized

_REFUSALS: dict[Refusal, GatewayError] = {
    Refusal.MISSING: unauthorized(
        "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' (or "
        "x-api-key, or x-goog-api-key)."
    ),
    Refusal.MALFORMED: unauthorized("The API key is malformed: nexai keys start with 'sk-nx-'."),
    Refusal.UNKNOWN: unauthorized("Incorrect API key provided."),
    Refusal.REVOKED: forbidden("key_revoked", "This API key has been revoked."),
    Refusal.SUSPENDED: forbidden("key_suspended", "This API key is suspended. Contact support."),
    Refusal.EXPIRED: forbidden("key_expired", "This API key has expired."),
    Refusal.ACCOUNT_DISABLED: forbidden(
        "account_disabled",
        "The account this API key belongs to has been deactivated. Contact support.",
    ),
}


def presented_secret(request: HttpRequest) -> str | None:
    """The key from `Authorization: Bearer`, `x-api-key` (Anthropic SDK), `api-key`
    (Azure-style clients), `x-goog-api-key` or the `key` query parameter (Google's
    SDKs and Gemini CLI), whichever is present."""
    headers = request.headers
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() or None
    return (
        headers.get("x-api-key")
        or headers.get("api-key")
        or headers.get("x-goog-api-key")
        or request.GET.get("key")
        or None
    )


async def authenticate(request: HttpRequest) -> KeySnapshot:
    result = await aauthenticate(presented_secret(request))
    if result.refusal is not None:
        raise _REFUSALS[result.refusal]
    return result.key  # type: ignore[return-value]
