"""GET /v1/models, /v1/models/{id} and /v1/balance: answered by the gateway itself,
and the base URL. Unknown /v1 URLs are Django's 404, which gateway.asgi answers in the
path's dialect."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.keycache import KeySnapshot
from billing.models import Wallet
from core.db import in_thread
from gateway import errors
from gateway.endpoints import gemini
from gateway.errors import OPENAI
from gateway.relay import Endpoint, Reply
from gateway.spend import store
from providers.catalogue import ModelInfo, aget_catalogue


def _entry(model: ModelInfo) -> dict[str, object]:
    """OpenAI's model object, plus the limits coding agents read to size their
    prompts: `context_window` and `max_output_tokens` (and OpenRouter's
    `context_length`, which Cline and Roo Code read)."""
    return {
        "id": model.public_id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "type": model.type,
        "context_window": model.context_window,
        "context_length": model.context_window,
        "max_output_tokens": model.max_output_tokens,
    }


def _google_client(request: HttpRequest) -> bool:
    """Google's SDKs (set to api version v1) list models at /v1/models too; they send
    their key as x-goog-api-key or ?key=, and read Google's shape."""
    return "x-goog-api-key" in request.headers or "key" in request.GET


async def parse_list(request: HttpRequest, key: KeySnapshot) -> Reply:
    if _google_client(request):
        return Reply({"models": await gemini.models_for(key)})
    models = sorted((await aget_catalogue()).models.values(), key=lambda m: m.public_id)
    data = [_entry(m) for m in models if key.allows_model(m.public_id)]
    return Reply({"object": "list", "data": data})


async def parse_retrieve(request: HttpRequest, key: KeySnapshot) -> Reply:
    model_id = request.resolver_match.kwargs["model_id"]
    model = (await aget_catalogue()).get(model_id)
    if model is None or not key.allows_model(model.public_id):
        raise errors.model_not_found(model_id)
    if _google_client(request) and model.type == "chat":
        return Reply(gemini.model_entry(model))
    return Reply(_entry(model))


@in_thread
def _wallet(user_id: int) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user_id=user_id)
    return wallet


async def parse_balance(request: HttpRequest, key: KeySnapshot) -> Reply:
    """The balance as the gateway sees it: the ledger's, less charges not yet written."""
    wallet = await _wallet(key.user_id)
    pending = (await in_thread(store().snapshot)(user_id=key.user_id)).get("pend", 0)
    return Reply(
        {
            "balance": wallet.balance - pending,
            "currency": "credits",
            "total_spent": wallet.total_spent + pending,
            "last_updated": wallet.updated_at.isoformat(),
        }
    )


async def parse_root(request: HttpRequest, key: None) -> Reply:
    """What answers at the API's base URL: clients (Claude Code among them) probe it
    with HEAD before their first call."""
    return Reply({"object": "api", "name": "nexai", "docs": "/v1/docs", "models": "/v1/models"})


async def parse_upgrade(request: HttpRequest, key: None) -> Reply:
    raise errors.websocket_not_supported()


models = Endpoint("models.list", OPENAI, parse_list)
model = Endpoint("models.retrieve", OPENAI, parse_retrieve)
balance = Endpoint("balance", OPENAI, parse_balance)
upgrade = Endpoint("upgrade", OPENAI, parse_upgrade, authenticated=False)
root = Endpoint("root", OPENAI, parse_root, authenticated=False)
