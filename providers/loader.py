"""Reading the providers file (DESIGN.md) into the catalogue.

Parsing and validation happen completely before anything is written, and the write
is one transaction, so a bad file leaves the catalogue exactly as it was. Every error
names the line and the entry at fault.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.db import transaction

from providers.models import AiModel, Provider, ProviderKey, Route
from providers.prices import OPTIONAL_TOKEN_PRICES

_LINE = "__line__"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PRICE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    *OPTIONAL_TOKEN_PRICES,
    "per_mchar",
    "per_minute",
)


class LoadError(Exception):
    pass


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line each mapping started on."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


@dataclass
class ProviderSpec:
    name: str
    kind: str
    base_url: str
    timeout: int
    settings: dict[str, Any]
    keys: list[tuple[str, int]]  # (secret, weight)


@dataclass
class ModelSpec:
    public_id: str
    type: str
    owned_by: str
    context_window: int | None
    max_output_tokens: int | None
    routes: list[tuple[str, str]]  # (provider name, upstream model)
    prices: dict[str, Any] = field(default_factory=dict)


@dataclass
class Catalogue:
    providers: list[ProviderSpec]
    models: list[ModelSpec]


@dataclass
class LoadSummary:
    providers: int
    models: int
    created: int
    updated: int
    disabled: list[str]

    def __str__(self) -> str:
        text = (
            f"{self.providers} providers, {self.models} models: "
            f"{self.created} created, {self.updated} updated, {self.models + self.providers - self.created - self.updated} unchanged"
        )
        if self.disabled:
            text += f"; disabled (no longer in the file): {', '.join(self.disabled)}"
        return text


def _where(entry: dict[str, Any], what: str) -> str:
    return f"line {entry.get(_LINE, '?')}: {what}"


def _int(entry: dict[str, Any], key: str, where: str, *, minimum: int = 0) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoadError(f"{where}: {key} must be a whole number, not {value!r}")
    if value < minimum:
        raise LoadError(f"{where}: {key} must be at least {minimum}, not {value}")
    return value


def _secret(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise LoadError(f"{where}: each key must be a string such as env:OPENAI_API_KEY")
    if raw.startswith("env:"):
        name = raw[4:]
        value = os.environ.get(name)
        if not value:
            raise LoadError(f"{where}: environment variable {name} is not set")
        return value
    return raw


def _parse_provider(entry: Any, index: int) -> ProviderSpec:
    if not isinstance(entry, dict):
        raise LoadError(f"providers[{index}]: must be a mapping")
    name = entry.get("name")
    where = _where(entry, f"providers[{index}] ({name or 'unnamed'})")
    if not isinstance(name, str) or not _SLUG.match(name):
        raise LoadError(f"{where}: name must be a lower-case slug")
    kind = entry.get("kind")
    if kind not in Provider.Kind.values:
        raise LoadError(
            f"{where}: unknown kind {kind!r} (expected one of {', '.join(Provider.Kind.values)})"
        )
    base_url = entry.get("base_url")
    if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
        raise LoadError(f"{where}: base_url must be an http(s) URL")
    settings: dict[str, Any] = {}
    if kind == Provider.Kind.AZURE:
        api_version = entry.get("api_version")
        if not isinstance(api_version, str) or not api_version:
            raise LoadError(f"{where}: azure providers need api_version")
        settings["api_version"] = api_version
    # Whether the upstream speaks the Responses API: /v1/responses is then forwarded
    # as written rather than translated to chat completions.
    responses_api = entry.get("responses_api", False)
    if not isinstance(responses_api, bool):
        raise LoadError(f"{where}: responses_api must be true or false")
    if responses_api and kind not in (Provider.Kind.OPENAI, Provider.Kind.AZURE):
        raise LoadError(f"{where}: only openai and azure providers speak the Responses API")
    if responses_api:
        settings["responses_api"] = True
    keys_raw = entry.get("keys", [])
    if not isinstance(keys_raw, list):
        raise LoadError(f"{where}: keys must be a list")
    keys = []
    for key in keys_raw:
        if isinstance(key, dict):
            weight = _int(key, "weight", where, minimum=1) or 1
            keys.append((_secret(key.get("key"), where), weight))
        else:
            keys.append((_secret(key, where), 1))
    timeout = _int(entry, "timeout", where, minimum=1) or 300
    max_attempts = _int(entry, "max_attempts", where, minimum=1)  # per request (upstream.py)
    if max_attempts:
        settings["max_attempts"] = max_attempts
    return ProviderSpec(name, kind, base_url.rstrip("/"), timeout, settings, keys)


def _parse_price(entry: dict[str, Any], where: str) -> dict[str, Any]:
    price = entry.get("price") or {}
    if not isinstance(price, dict):
        raise LoadError(f"{where}: price must be a mapping")
    prices: dict[str, Any] = {}
    for key in price:
        if key != _LINE and key not in (*_PRICE_FIELDS, "per_image"):
            raise LoadError(f"{where}: unknown price field {key!r}")
    for key in _PRICE_FIELDS:
        prices[key] = _int(price, key, f"{where}: price")
    per_image = price.get("per_image")
    if isinstance(per_image, dict):
        sizes = {k: v for k, v in per_image.items() if k != _LINE}
        for size in sizes:
            _int(sizes, size, f"{where}: price.per_image")
        prices["per_image"] = sizes
    elif per_image is not None:
        prices["per_image"] = _int(price, "per_image", f"{where}: price")
    return prices


def _parse_model(entry: Any, index: int, providers: set[str]) -> ModelSpec:
    if not isinstance(entry, dict):
        raise LoadError(f"models[{index}]: must be a mapping")
    public_id = entry.get("id")
    where = _where(entry, f"models[{index}] ({public_id or 'no id'})")
    if not isinstance(public_id, str) or not public_id.strip():
        raise LoadError(f"{where}: id is required")
    model_type = entry.get("type", AiModel.Type.CHAT)
    if model_type not in AiModel.Type.values:
        raise LoadError(f"{where}: unknown type {model_type!r}")
    routes_raw = entry.get("routes")
    if not isinstance(routes_raw, list) or not routes_raw:
        raise LoadError(f"{where}: at least one route is required")
    routes = []
    for route in routes_raw:
        if not isinstance(route, dict):
            raise LoadError(f"{where}: each route is a mapping {{provider, upstream_model}}")
        provider = route.get("provider")
        if provider not in providers:
            raise LoadError(f"{_where(route, where)}: route to unknown provider {provider!r}")
        routes.append((provider, str(route.get("upstream_model") or public_id)))
    return ModelSpec(
        public_id=public_id,
        type=model_type,
        owned_by=str(entry.get("owned_by") or ""),
        context_window=_int(entry, "context_window", where, minimum=1),
        max_output_tokens=_int(entry, "max_output_tokens", where, minimum=1),
        routes=routes,
        prices=_parse_price(entry, where),
    )


def catalogue_parse(text: str) -> Catalogue:
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        raise LoadError(f"{line}YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise LoadError("the file must be a mapping with 'providers' and 'models'")
    providers = [_parse_provider(e, i) for i, e in enumerate(data.get("providers") or [])]
    names = [p.name for p in providers]
    for name in names:
        if names.count(name) > 1:
            raise LoadError(f"duplicate provider name {name!r}")
    models = [_parse_model(e, i, set(names)) for i, e in enumerate(data.get("models") or [])]
    seen: set[str] = set()
    for index, model in enumerate(models):
        if model.public_id in seen:
            line = data["models"][index].get(_LINE)
            raise LoadError(f"line {line}: models[{index}]: duplicate model id {model.public_id!r}")
        seen.add(model.public_id)
    return Catalogue(providers=providers, models=models)


def _upsert(model_cls: type, lookup: dict[str, Any], values: dict[str, Any]) -> str:
    """Create or update one row; returns 'created', 'updated' or 'unchanged'."""
    obj = model_cls.objects.filter(**lookup).first()
    if obj is None:
        model_cls.objects.create(**lookup, **values)
        return "created"
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if not changed:
        return "unchanged"
    for k in changed:
        setattr(obj, k, values[k])
    obj.save(update_fields=changed)
    return "updated"


def _apply_keys(provider: Provider, keys: list[tuple[str, int]]) -> bool:
    changed = False
    wanted = {ProviderKey.fingerprint_of(secret): (secret, weight) for secret, weight in keys}
    for fingerprint, (secret, weight) in wanted.items():
        key = provider.keys.filter(fingerprint=fingerprint).first()
        if key is None:
            ProviderKey.objects.create(provider=provider, secret=secret, weight=weight)
            changed = True
        elif key.weight != weight or not key.enabled:
            key.weight, key.enabled = weight, True
            key.save(update_fields=["weight", "enabled", "fingerprint"])
            changed = True
    # Keys dropped from the file are disabled, not deleted: usage keeps pointing at them.
    stale = provider.keys.filter(enabled=True).exclude(fingerprint__in=wanted)
    return stale.update(enabled=False) > 0 or changed


def _apply_routes(
    model: AiModel, routes: list[tuple[str, str]], by_name: dict[str, Provider]
) -> bool:
    current = [(r.provider.name, r.upstream_model) for r in model.routes.select_related("provider")]
    if current == routes:
        return False
    model.routes.all().delete()
    Route.objects.bulk_create(
        Route(model=model, position=i, provider=by_name[p], upstream_model=u)
        for i, (p, u) in enumerate(routes)
    )
    return True


@transaction.atomic
def catalogue_apply(catalogue: Catalogue) -> LoadSummary:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    by_name: dict[str, Provider] = {}
    for spec in catalogue.providers:
        outcome = _upsert(
            Provider,
            {"name": spec.name},
            {
                "kind": spec.kind,
                "base_url": spec.base_url,
                "timeout": spec.timeout,
                "settings": spec.settings,
                "enabled": True,
            },
        )
        provider = Provider.objects.get(name=spec.name)
        if _apply_keys(provider, spec.keys) and outcome == "unchanged":
            outcome = "updated"
        counts[outcome] += 1
        by_name[spec.name] = provider
    for spec in catalogue.models:
        outcome = _upsert(
            AiModel,
            {"public_id": spec.public_id},
            {
                "type": spec.type,
                "owned_by": spec.owned_by,
                "context_window": spec.context_window,
                "max_output_tokens": spec.max_output_tokens,
                "enabled": True,
                **_price_values(spec.prices),
            },
        )
        model = AiModel.objects.get(public_id=spec.public_id)
        if _apply_routes(model, spec.routes, by_name) and outcome == "unchanged":
            outcome = "updated"
        counts[outcome] += 1
    disabled = [
        *_disable_missing(Provider, "name", [p.name for p in catalogue.providers]),
        *_disable_missing(AiModel, "public_id", [m.public_id for m in catalogue.models]),
    ]
    return LoadSummary(
        providers=len(catalogue.providers),
        models=len(catalogue.models),
        created=counts["created"],
        updated=counts["updated"],
        disabled=disabled,
    )


def _price_values(prices: dict[str, Any]) -> dict[str, Any]:
    values = {k: prices.get(k) for k in (*_PRICE_FIELDS, "per_image")}
    # Token prices are never null (a free model is 0); the others are null when unused.
    values["input_per_mtok"] = values["input_per_mtok"] or 0
    values["output_per_mtok"] = values["output_per_mtok"] or 0
    return values


def _disable_missing(model_cls: type, field_name: str, keep: list[str]) -> list[str]:
    stale = model_cls.objects.filter(enabled=True).exclude(**{f"{field_name}__in": keep})
    names = sorted(stale.values_list(field_name, flat=True))
    stale.update(enabled=False)
    return names


def catalogue_load(*, path: str) -> LoadSummary:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    return catalogue_apply(catalogue_parse(text))
