"""The OpenAI adapter's request building: a pure function of the body and route."""

from __future__ import annotations

import orjson
import pytest

from providers.adapters.openai import AzureAdapter, OpenAIAdapter
from providers.catalogue import ProviderInfo, RouteInfo, UpstreamKey

KEY = UpstreamKey(id=1, secret="sk-up", weight=1)


def _route(upstream_model: str, kind: str = "openai") -> RouteInfo:
    provider = ProviderInfo(
        id=1, name="up", kind=kind, base_url="http://127.0.0.1:9/v1", timeout=10,
        settings={"api_version": "2024-10-21"}, keys=(KEY,),
    )  # fmt: skip
    return RouteInfo(provider=provider, upstream_model=upstream_model)


@pytest.mark.parametrize(
    ("upstream_model", "field"),
    [
        ("gpt-5", "max_completion_tokens"),
        ("gpt-5-mini", "max_completion_tokens"),
        ("o3-mini", "max_completion_tokens"),
        ("o4-mini-2025-04-16", "max_completion_tokens"),
        ("openai/gpt-5", "max_completion_tokens"),
        ("gpt-4o", "max_tokens"),
        ("deepseek-chat", "max_tokens"),
        ("gpt-50-turbo", "max_tokens"),
    ],
)
def test_reasoning_models_get_max_completion_tokens(upstream_model: str, field: str) -> None:
    body = {"model": "public", "messages": [], "max_tokens": 100}
    request = OpenAIAdapter().chat_request(
        body, route=_route(upstream_model), key=KEY, stream=False
    )
    sent = orjson.loads(request.content)
    assert sent[field] == 100
    assert set(sent) & {"max_tokens", "max_completion_tokens"} == {field}
    assert sent["model"] == upstream_model


def test_a_client_that_set_max_completion_tokens_keeps_its_value() -> None:
    body = {"messages": [], "max_tokens": 100, "max_completion_tokens": 50}
    request = OpenAIAdapter().chat_request(body, route=_route("gpt-5"), key=KEY, stream=False)
    assert orjson.loads(request.content)["max_completion_tokens"] == 50


def test_streams_always_ask_for_usage_and_azure_uses_its_deployment_url() -> None:
    request = AzureAdapter().chat_request(
        {"messages": []}, route=_route("my-deployment", kind="azure"), key=KEY, stream=True
    )
    assert request.url == (
        "http://127.0.0.1:9/v1/openai/deployments/my-deployment/chat/completions"
        "?api-version=2024-10-21"
    )
    assert request.headers["api-key"] == "sk-up"
    assert orjson.loads(request.content)["stream_options"] == {"include_usage": True}
