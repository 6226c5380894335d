"""An immutable, per-process snapshot of the catalogue for the gateway's hot path.

Reading models, routes and keys from the database on every request would cost more
than everything else the gateway does. Each process keeps one snapshot and checks a
version in the shared cache at most once a second; staff edits and load_providers
bump that version (providers.services.catalogue_changed), so every process reloads
within about a second.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from core.clock import clock
from core.db import in_thread
from providers.models import AiModel, Provider
from providers.prices import Prices

CATALOGUE_VERSION_KEY = "catalogue:version"
CHECK_EVERY = 1.0  # seconds between version checks
# Without Redis the version lives in each process's own cache, so a load_providers run
# in another process cannot announce itself: the snapshot is simply rebuilt this often.
REBUILD_EVERY_UNSHARED = 5.0


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    id: int
    secret: str = field(repr=False)
    weight: int


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: int
    name: str
    kind: str
    base_url: str
    timeout: int
    settings: dict
    keys: tuple[UpstreamKey, ...]


@dataclass(frozen=True, slots=True)
class RouteInfo:
    provider: ProviderInfo
    upstream_model: str
    # The model's own output limit, for upstreams that require one on every request
    # (Anthropic's max_tokens) when the caller set none.
    max_output_tokens: int | None = None
    cost: Prices | None = None  # the upstream's prices to us, for margins


@dataclass(frozen=True, slots=True)
class ModelInfo:
    public_id: str
    type: str
    owned_by: str
    context_window: int | None
    max_output_tokens: int | None
    created: int
    prices: Prices
    routes: tuple[RouteInfo, ...]


@dataclass(frozen=True, slots=True)
class Catalogue:
    models: dict[str, ModelInfo]
    version: object = None

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)


def catalogue_build(version: object = None) -> Catalogue:
    """Read the enabled catalogue from the database (three queries)."""
    providers: dict[int, ProviderInfo] = {}
    for provider in Provider.objects.filter(enabled=True).prefetch_related("keys"):
        keys = tuple(
            UpstreamKey(id=k.pk, secret=k.secret, weight=k.weight)
            for k in provider.keys.all()
            if k.enabled
        )
        providers[provider.pk] = ProviderInfo(
            id=provider.pk,
            name=provider.name,
            kind=provider.kind,
            base_url=provider.base_url.rstrip("/"),
            timeout=provider.timeout,
            settings=dict(provider.settings or {}),
            keys=keys,
        )
    models = {}
    for model in AiModel.objects.filter(enabled=True).prefetch_related("routes"):
        routes = tuple(
            RouteInfo(
                provider=providers[r.provider_id],
                upstream_model=r.upstream_model,
                max_output_tokens=model.max_output_tokens,
                cost=r.cost_prices,
            )
            for r in model.routes.all()
            if r.provider_id in providers
        )
        models[model.public_id] = ModelInfo(
            public_id=model.public_id,
            type=model.type,
            owned_by=model.owned_by,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
            created=int(model.created_at.timestamp()),
            prices=Prices.of(model),
            routes=routes,
        )
    return Catalogue(models=models, version=version)


class _Holder:
    def __init__(self) -> None:
        self.catalogue: Catalogue | None = None
        self.checked_at = 0.0
        self.built_at = 0.0
        self.lock = threading.Lock()


_holder = _Holder()


def announce_change() -> None:
    """A new version for every process to see, and this process's snapshot dropped."""
    cache.set(CATALOGUE_VERSION_KEY, uuid.uuid4().hex, None)
    reset()


def reset() -> None:
    """Forget this process's snapshot (tests, and after catalogue writes in-process)."""
    _holder.catalogue = None
    _holder.checked_at = 0.0


def _refresh() -> Catalogue:
    with _holder.lock:
        now = clock.monotonic()
        version = cache.get(CATALOGUE_VERSION_KEY)
        current = _holder.catalogue
        unshared_and_old = (
            not settings.REDIS_URL and now - _holder.built_at >= REBUILD_EVERY_UNSHARED
        )
        if current is None or current.version != version or unshared_and_old:
            current = catalogue_build(version)
            _holder.catalogue = current
            _holder.built_at = now
        _holder.checked_at = now
        return current


def current() -> Catalogue | None:
    """This process's snapshot as it is, never refreshed (no database read): for code
    on the event loop that only needs what the requests served so far loaded."""
    return _holder.catalogue


def get_catalogue() -> Catalogue:
    current = _holder.catalogue
    if current is not None and clock.monotonic() - _holder.checked_at < CHECK_EVERY:
        return current
    return _refresh()


async def aget_catalogue() -> Catalogue:
    current = _holder.catalogue
    if current is not None and clock.monotonic() - _holder.checked_at < CHECK_EVERY:
        return current
    return await in_thread(_refresh)()
