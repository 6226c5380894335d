from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter
from providers.adapters.gemini import GeminiAdapter
from providers.adapters.openai import AzureAdapter, OpenAIAdapter

_ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "azure": AzureAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}


def register(adapter: Adapter) -> None:
    _ADAPTERS[adapter.kind] = adapter


def adapter_for(kind: str) -> Adapter:
    return _ADAPTERS[kind]
