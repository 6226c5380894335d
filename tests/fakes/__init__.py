"""Fake upstream providers and Stripe, served over real HTTP on 127.0.0.1 for tests."""

from __future__ import annotations

from .anthropic import FakeAnthropic, anthropic_error
from .base import FakeServer, RecordedRequest, Reply, ToolCall
from .gemini import FakeGemini, gemini_error
from .openai import FakeAzureOpenAI, FakeOpenAI, openai_error
from .stripe import FakeStripe, checkout_completed_event, signed_webhook

__all__ = [
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeGemini",
    "FakeOpenAI",
    "FakeServer",
    "FakeStripe",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "anthropic_error",
    "checkout_completed_event",
    "gemini_error",
    "openai_error",
    "signed_webhook",
]
