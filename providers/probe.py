"""Staff's "test" button: one tiny real request to an upstream through its adapter,
with one key, and what came back (secrets removed)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from providers import http
from providers.adapters import adapter_for
from providers.adapters.base import Unsupported
from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey
from providers.models import ProviderKey, Route
from providers.redaction import for_staff

PROMPT = "Reply with the single word OK."


@dataclass(frozen=True)
class Probe:
    ok: bool
    status: int | None  # None when no answer came
    latency_ms: int
    answer: str  # the model's words, or the upstream's error (secrets removed)


def _route_info(route: Route, key: ProviderKey) -> tuple[RouteInfo, UpstreamKey]:
    provider = route.provider
    upstream_key = UpstreamKey(id=key.pk, secret=key.secret, weight=key.weight)
    info = ProviderInfo(
        id=provider.pk, name=provider.name, kind=provider.kind,
        base_url=provider.base_url.rstrip("/"), timeout=provider.timeout,
        settings=dict(provider.settings or {}), keys=(upstream_key,),
    )  # fmt: skip
    return RouteInfo(info, route.upstream_model, route.model.max_output_tokens), upstream_key


def _answer(kind: str, provider_kind: str, data: Any, *, model: str) -> str:
    if kind == "embedding":
        vector = data["data"][0]["embedding"]
        return f"an embedding of {len(vector)} dimensions"
    completion = adapter_for(provider_kind).chat_response(data, model=model)
    return str(completion["choices"][0]["message"].get("content") or "(no text)")


async def _send(route: Route, key: ProviderKey) -> Probe:
    info, upstream_key = _route_info(route, key)
    adapter = adapter_for(info.provider.kind)
    if route.model.type == "embedding":
        request = adapter.passthrough_request(
            "/embeddings", route=info, key=upstream_key,
            body={"model": route.upstream_model, "input": "OK"},
        )  # fmt: skip
    elif route.model.type == "chat":
        body = {"model": route.upstream_model, "messages": [{"role": "user", "content": PROMPT}]}
        body["max_tokens"] = 5
        request = adapter.chat_request(body, route=info, key=upstream_key, stream=False)
    else:
        raise Unsupported(f"the test sends chat or embedding requests, not {route.model.type}")
    started = time.monotonic()
    try:
        async with asyncio.timeout(min(info.provider.timeout, 30)):
            response = await http.send(request)
            content = await response.aread()
    except TimeoutError:
        return Probe(False, None, int((time.monotonic() - started) * 1000), "no answer in time")
    except http.TransportError as exc:  # a connection error of any kind: say which
        return Probe(False, None, int((time.monotonic() - started) * 1000), str(exc))
    finally:
        await http.aclose()
    latency = int((time.monotonic() - started) * 1000)
    if response.status_code >= 400:
        said = adapter.error_message(response.status_code, content)
        return Probe(False, response.status_code, latency, said or response.reason_phrase)
    try:
        data = orjson.loads(content)
        answer = _answer(route.model.type, info.provider.kind, data, model=route.model.public_id)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return Probe(False, response.status_code, latency, "an answer that could not be read")
    return Probe(True, response.status_code, latency, answer)


def provider_key_test(*, key: ProviderKey, route: Route) -> Probe:
    """Send the tiny request (from a sync view: its own event loop) and report."""
    try:
        probe = asyncio.run(_send(route, key))
    except (Unsupported, ValueError) as exc:
        probe = Probe(False, None, 0, str(exc))
    answer = for_staff(probe.answer, key.secret)[:300]
    return Probe(probe.ok, probe.status, probe.latency_ms, answer)
