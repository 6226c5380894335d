"""Upstream adapters: one class per provider kind, found through `adapter_for(kind)`."""

from __future__ import annotations

from providers.adapters.base import Adapter, UpstreamRequest
from providers.adapters.registry import adapter_for

__all__ = ["Adapter", "UpstreamRequest", "adapter_for"]
