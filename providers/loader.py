"""Reading the providers file (DESIGN.md) into the catalogue.

Parsing and validation happen completely before anything is written, and the write
is one transaction, so a bad file leaves the catalogue exactly as it was. Every error
names the line and the entry at fault.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml
from django.db import transaction

from providers.costs import below_cost, highest_cost, markup_prices
from providers.models import AiModel, Origin, Provider, ProviderKey, Route
from providers.prices import OPTIONAL_TOKEN_PRICES, Prices

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
class RouteSpec:
    provider: str
    upstream_model: str
    cost: dict[str, Any] | None = None  # Route.cost_<field> values, None when unknown
    allow_below_cost: bool = False


@dataclass
class ModelSpec:
    public_id: str
    type: str
    owned_by: str
    context_window: int | None
    max_output_tokens: int | None
    routes: list[RouteSpec]
    prices: dict[str, Any] = field(default_factory=dict)
    markup_percent: int | None = None


@dataclass
class Catalogue:
    providers: list[ProviderSpec]
    models: list[ModelSpec]
    # Routes sold below cost with `allow_below_cost: true`: loaded, and said loudly.
    warnings: list[str] = field(default_factory=list)
    # What --only-with-keys left out, and why.
    skipped: list[str] = field(default_factory=list)


@dataclass
class LoadSummary:
    providers: int
    models: int
    created: int
    updated: int
    disabled: list[str]  # "model qwen-max": disabled by this run (--prune)
    would_disable: list[str] = field(default_factory=list)  # file entries gone, no --prune
    kept: list[str] = field(default_factory=list)  # created in the admin, never disabled
    changes: list[str] = field(default_factory=list)  # one line per change, for the diff
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dry_run: bool = False

    def __str__(self) -> str:
        unchanged = self.models + self.providers - self.created - self.updated
        verb = "would be " if self.dry_run else ""
        text = (
            f"{self.providers} providers, {self.models} models: {verb}"
            f"{self.created} created, {self.updated} updated, {unchanged} unchanged"
        )
        if self.disabled:
            text += f"; disabled (no longer in the file): {', '.join(self.disabled)}"
        return text

    def report(self) -> list[str]:
        """Everything an operator should read after a run, one line each."""
        lines = [*(f"  {c}" for c in self.changes)]
        lines += [f"WARNING: {w}" for w in self.warnings]
        lines += [f"skipped: {s}" for s in self.skipped]
        if self.would_disable:
            lines.append(
                "not in the file any more, left enabled (run with --prune to disable): "
                + ", ".join(self.would_disable)
            )
        if self.kept:
            lines.append(
                "created in the admin, not in the file, left as they are: " + ", ".join(self.kept)
            )
        return lines

    def audit(self) -> dict[str, Any]:
        """The run as data for the audit trail."""
        return {
            "changes": self.changes,
            "disabled": self.disabled,
            "warnings": self.warnings,
            "skipped": self.skipped,
        }


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


class _UnsetKey(Exception):
    """An env: key whose variable is unset, under --only-with-keys."""


def _secret(raw: Any, where: str, *, only_with_keys: bool = False) -> str:
    if not isinstance(raw, str) or not raw:
        raise LoadError(f"{where}: each key must be a string such as env:OPENAI_API_KEY")
    if raw.startswith("env:"):
        name = raw[4:]
        value = os.environ.get(name)
        if not value:
            if only_with_keys:
                raise _UnsetKey(name)
            raise LoadError(f"{where}: environment variable {name} is not set")
        return value
    return raw


def _parse_keys(
    keys_raw: list[Any], where: str, only_with_keys: bool
) -> tuple[list[tuple[str, int]], list[str]]:
    """(keys, names of unset env variables left out)."""
    keys, unset = [], []
    for key in keys_raw:
        raw, weight = (
            (key.get("key"), _int(key, "weight", where, minimum=1) or 1)
            if isinstance(key, dict)
            else (key, 1)
        )
        try:
            keys.append((_secret(raw, where, only_with_keys=only_with_keys), weight))
        except _UnsetKey as unset_key:
            unset.append(str(unset_key))
    return keys, unset


def _parse_provider(
    entry: Any, index: int, *, only_with_keys: bool = False
) -> tuple[ProviderSpec, list[str]]:
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
    keys, unset = _parse_keys(keys_raw, where, only_with_keys)
    timeout = _int(entry, "timeout", where, minimum=1) or 300
    max_attempts = _int(entry, "max_attempts", where, minimum=1)  # per request (upstream.py)
    if max_attempts:
        settings["max_attempts"] = max_attempts
    return ProviderSpec(name, kind, base_url.rstrip("/"), timeout, settings, keys), unset


def _parse_price(
    entry: dict[str, Any], where: str, key: str = "price", *, markup: bool = False
) -> dict[str, Any]:
    price = entry.get(key) or {}
    if not isinstance(price, dict):
        raise LoadError(f"{where}: {key} must be a mapping")
    prices: dict[str, Any] = {}
    allowed = (*_PRICE_FIELDS, "per_image", *(("markup_percent",) if markup else ()))
    for name in price:
        if name != _LINE and name not in allowed:
            raise LoadError(f"{where}: unknown {key} field {name!r}")
    for name in _PRICE_FIELDS:
        prices[name] = _int(price, name, f"{where}: {key}")
    if markup:
        prices["markup_percent"] = _int(price, "markup_percent", f"{where}: {key}")
    per_image = price.get("per_image")
    if isinstance(per_image, dict):
        sizes = {k: v for k, v in per_image.items() if k != _LINE}
        for size in sizes:
            _int(sizes, size, f"{where}: {key}.per_image")
        prices["per_image"] = sizes
    elif per_image is not None:
        prices["per_image"] = _int(price, "per_image", f"{where}: {key}")
    else:
        prices["per_image"] = None
    return prices


def _parse_route(route: Any, where: str, public_id: str, providers: set[str]) -> RouteSpec:
    if not isinstance(route, dict):
        raise LoadError(f"{where}: each route is a mapping {{provider, upstream_model}}")
    provider = route.get("provider")
    if provider not in providers:
        raise LoadError(f"{_where(route, where)}: route to unknown provider {provider!r}")
    cost = _parse_price(route, _where(route, where), "cost") if route.get("cost") else None
    allow = route.get("allow_below_cost", False)
    if not isinstance(allow, bool):
        raise LoadError(f"{_where(route, where)}: allow_below_cost must be true or false")
    return RouteSpec(provider, str(route.get("upstream_model") or public_id), cost, allow)


def _as_prices(values: dict[str, Any]) -> Prices:
    fields = {k: values.get(k) for k in (*_PRICE_FIELDS, "per_image")}
    fields["input_per_mtok"] = fields["input_per_mtok"] or 0
    fields["output_per_mtok"] = fields["output_per_mtok"] or 0
    return Prices(**fields)


def _selling_prices(spec: ModelSpec, where: str) -> dict[str, Any]:
    """The model's prices, with a markup applied over the dearest route cost: fields
    the file gives explicitly win over the computed ones."""
    percent = spec.prices.pop("markup_percent", None)
    if percent is None:
        return spec.prices
    costs = [_as_prices(r.cost) for r in spec.routes if r.cost]
    dearest = highest_cost(costs)
    if dearest is None:
        raise LoadError(f"{where}: price.markup_percent needs a cost: on at least one route")
    computed = asdict(markup_prices(dearest, percent))
    explicit = {k: v for k, v in spec.prices.items() if v is not None}
    spec.markup_percent = percent
    return {**computed, **explicit}


def _check_costs(spec: ModelSpec, where: str, warnings: list[str]) -> None:
    """A route sold below its cost is refused, unless the file says allow_below_cost."""
    price = _as_prices(spec.prices)
    for route in spec.routes:
        if not route.cost:
            continue
        faults = below_cost(price, _as_prices(route.cost))
        if not faults:
            continue
        what = f"{spec.public_id} via {route.provider} is sold below cost: {'; '.join(faults)}"
        if not route.allow_below_cost:
            raise LoadError(f"{where}: {what} (set allow_below_cost: true on the route if meant)")
        warnings.append(f"{what} (allow_below_cost)")


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
    routes = [_parse_route(r, where, public_id, providers) for r in routes_raw]
    return ModelSpec(
        public_id=public_id,
        type=model_type,
        owned_by=str(entry.get("owned_by") or ""),
        context_window=_int(entry, "context_window", where, minimum=1),
        max_output_tokens=_int(entry, "max_output_tokens", where, minimum=1),
        routes=routes,
        prices=_parse_price(entry, where, markup=True),
    )


def catalogue_parse(text: str, *, only_with_keys: bool = False) -> Catalogue:
    """Parse and check the whole file. With `only_with_keys`, providers whose env: keys
    are all unset are left out, with the routes to them and the models left with no
    route (each listed in `skipped`), instead of failing the load."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        raise LoadError(f"{line}YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise LoadError("the file must be a mapping with 'providers' and 'models'")
    parsed = [
        _parse_provider(e, i, only_with_keys=only_with_keys)
        for i, e in enumerate(data.get("providers") or [])
    ]
    providers = [p for p, _ in parsed]
    names = [p.name for p in providers]
    for name in names:
        if names.count(name) > 1:
            raise LoadError(f"duplicate provider name {name!r}")
    models = [_parse_model(e, i, set(names)) for i, e in enumerate(data.get("models") or [])]
    seen: set[str] = set()
    catalogue = Catalogue(providers=providers, models=models)
    for index, model in enumerate(models):
        where = f"line {data['models'][index].get(_LINE)}: models[{index}]"
        if model.public_id in seen:
            raise LoadError(f"{where}: duplicate model id {model.public_id!r}")
        seen.add(model.public_id)
        model.prices = _selling_prices(model, f"{where} ({model.public_id})")
        _check_costs(model, f"{where} ({model.public_id})", catalogue.warnings)
    for p, unset in parsed:
        if unset and p.keys:
            catalogue.skipped.append(f"keys of provider {p.name}: {', '.join(unset)} not set")
    skip = {p.name: unset for p, unset in parsed if unset and not p.keys}
    return _without_skipped(catalogue, skip) if skip else catalogue


def _without_skipped(catalogue: Catalogue, skip: dict[str, list[str]]) -> Catalogue:
    for name, unset in skip.items():
        catalogue.skipped.append(f"provider {name} ({', '.join(unset)} not set)")
    catalogue.providers = [p for p in catalogue.providers if p.name not in skip]
    kept = []
    for model in catalogue.models:
        dropped = [r.provider for r in model.routes if r.provider in skip]
        model.routes = [r for r in model.routes if r.provider not in skip]
        if not model.routes:
            catalogue.skipped.append(f"model {model.public_id} (no provider left)")
            continue
        if dropped:
            catalogue.skipped.append(f"routes of {model.public_id} to {', '.join(dropped)}")
        kept.append(model)
    catalogue.models = kept
    return catalogue


class _Run:
    """What one apply does, collected as it goes: counts and a line per change."""

    def __init__(self, *, prune: bool) -> None:
        self.prune = prune
        self.counts = {"created": 0, "updated": 0, "unchanged": 0}
        self.changes: list[str] = []
        self.disabled: list[str] = []
        self.would_disable: list[str] = []
        self.kept: list[str] = []

    def upsert(
        self, model_cls: type, label: str, lookup: dict[str, Any], values: dict
    ) -> tuple[Any, str]:
        """Create or update one row, taking it over for the file: (row, outcome)."""
        obj = model_cls.objects.filter(**lookup).first()
        values = {**values, "origin": Origin.FILE}
        if obj is None:
            self.changes.append(f"create {label}")
            return model_cls.objects.create(**lookup, **values), "created"
        changed = [k for k, v in values.items() if getattr(obj, k) != v]
        if changed:
            diff = ", ".join(f"{k} {getattr(obj, k)!r} -> {values[k]!r}" for k in changed)
            self.changes.append(f"update {label}: {diff}")
            for k in changed:
                setattr(obj, k, values[k])
            obj.save(update_fields=changed)
        return obj, "updated" if changed else "unchanged"

    def count(self, outcome: str, extra_change: bool) -> None:
        if extra_change and outcome == "unchanged":
            outcome = "updated"
        self.counts[outcome] += 1

    def retire(self, label: str, rows: Any) -> None:
        """Rows the file no longer lists: the file's own are disabled with --prune (else
        listed); those made in the admin are never touched."""
        for row in rows:
            name = f"{label} {row}"
            if row.origin != Origin.FILE:
                self.kept.append(name)
            elif self.prune:
                row.enabled = False
                row.save(update_fields=["enabled"])
                self.disabled.append(name)
                self.changes.append(f"disable {name} (no longer in the file)")
            else:
                self.would_disable.append(name)


def _apply_keys(run: _Run, provider: Provider, keys: list[tuple[str, int]]) -> bool:
    changed = False
    wanted = {ProviderKey.fingerprint_of(secret): (secret, weight) for secret, weight in keys}
    for fingerprint, (secret, weight) in wanted.items():
        key = provider.keys.filter(fingerprint=fingerprint).first()
        label = f"key …{fingerprint} of {provider.name}"
        if key is None:
            ProviderKey.objects.create(
                provider=provider, secret=secret, weight=weight, origin=Origin.FILE
            )
            run.changes.append(f"create {label}")
            changed = True
        elif key.weight != weight or not key.enabled or key.origin != Origin.FILE:
            key.weight, key.enabled, key.origin = weight, True, Origin.FILE
            key.save(update_fields=["weight", "enabled", "origin", "fingerprint"])
            run.changes.append(f"update {label}")
            changed = True
    # Keys dropped from the file are disabled (with --prune), never deleted: usage
    # keeps pointing at them.
    stale = provider.keys.filter(enabled=True).exclude(fingerprint__in=wanted)
    before = len(run.disabled)
    run.retire("provider key", stale)
    return changed or len(run.disabled) > before


def _route_values(spec: RouteSpec) -> dict[str, Any]:
    cost = {k: v for k, v in (spec.cost or {}).items() if v is not None}
    return {"cost": cost or None, "allow_below_cost": spec.allow_below_cost}


def _route_state(route: Route) -> tuple:
    return (route.provider.name, route.upstream_model, route.cost, route.allow_below_cost)


def _apply_routes(
    run: _Run, model: AiModel, routes: list[RouteSpec], by_name: dict[str, Provider]
) -> bool:
    wanted = [(r.provider, r.upstream_model, *_route_values(r).values()) for r in routes]
    current = [_route_state(r) for r in model.routes.select_related("provider")]
    if current == wanted:
        return False
    model.routes.all().delete()
    Route.objects.bulk_create(
        Route(
            model=model,
            position=i,
            provider=by_name[r.provider],
            upstream_model=r.upstream_model,
            **_route_values(r),
        )
        for i, r in enumerate(routes)
    )
    shown = ", ".join(f"{r.provider}/{r.upstream_model}" for r in routes)
    run.changes.append(f"routes of model {model.public_id}: {shown}")
    return True


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def catalogue_apply(
    catalogue: Catalogue,
    *,
    prune: bool = False,
    dry_run: bool = False,
    on_applied: Callable[[LoadSummary], None] | None = None,
) -> LoadSummary:
    """Write the catalogue in one transaction. Entries the file no longer lists are
    disabled only with `prune`, and only those the file created. `dry_run` does the
    same work and rolls it back, so its summary is exactly what a real run would do.
    `on_applied` runs inside the transaction (the caller's audit entry commits with the
    change or not at all)."""
    summary: LoadSummary | None = None
    try:
        with transaction.atomic():
            summary = _apply(catalogue, prune=prune)
            summary.dry_run = dry_run
            if dry_run:
                raise _DryRun
            if on_applied is not None:
                on_applied(summary)
    except _DryRun:
        pass
    assert summary is not None
    return summary


def _apply(catalogue: Catalogue, *, prune: bool) -> LoadSummary:
    run = _Run(prune=prune)
    by_name: dict[str, Provider] = {}
    for spec in catalogue.providers:
        provider, outcome = run.upsert(
            Provider,
            f"provider {spec.name}",
            {"name": spec.name},
            {
                "kind": spec.kind,
                "base_url": spec.base_url,
                "timeout": spec.timeout,
                "settings": spec.settings,
                "enabled": True,
            },
        )
        run.count(outcome, _apply_keys(run, provider, spec.keys))
        by_name[spec.name] = provider
    for spec in catalogue.models:
        model, outcome = run.upsert(
            AiModel,
            f"model {spec.public_id}",
            {"public_id": spec.public_id},
            {
                "type": spec.type,
                "owned_by": spec.owned_by,
                "context_window": spec.context_window,
                "max_output_tokens": spec.max_output_tokens,
                "enabled": True,
                "markup_percent": spec.markup_percent,
                **_price_values(spec.prices),
            },
        )
        run.count(outcome, _apply_routes(run, model, spec.routes, by_name))
    names = [p.name for p in catalogue.providers]
    run.retire("provider", Provider.objects.filter(enabled=True).exclude(name__in=names))
    ids = [m.public_id for m in catalogue.models]
    run.retire("model", AiModel.objects.filter(enabled=True).exclude(public_id__in=ids))
    return LoadSummary(
        providers=len(catalogue.providers),
        models=len(catalogue.models),
        created=run.counts["created"],
        updated=run.counts["updated"],
        disabled=run.disabled,
        would_disable=run.would_disable,
        kept=run.kept,
        changes=run.changes,
        warnings=list(catalogue.warnings),
        skipped=list(catalogue.skipped),
    )


def _price_values(prices: dict[str, Any]) -> dict[str, Any]:
    values = {k: prices.get(k) for k in (*_PRICE_FIELDS, "per_image")}
    # Token prices are never null (a free model is 0); the others are null when unused.
    values["input_per_mtok"] = values["input_per_mtok"] or 0
    values["output_per_mtok"] = values["output_per_mtok"] or 0
    return values


def catalogue_load(
    *,
    path: str,
    prune: bool = False,
    dry_run: bool = False,
    only_with_keys: bool = False,
    on_applied: Callable[[LoadSummary], None] | None = None,
) -> LoadSummary:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    catalogue = catalogue_parse(text, only_with_keys=only_with_keys)
    return catalogue_apply(catalogue, prune=prune, dry_run=dry_run, on_applied=on_applied)
