"""The project's URLs plus two endpoints declared in tests/gateway/test_relay.py."""

from __future__ import annotations

from django.urls import path

from gateway.relay import view
from nexai.urls import urlpatterns as project_urls
from tests.gateway.test_relay import ECHO, ECHO_ANTHROPIC

urlpatterns = [
    path("v1/test/echo", view(ECHO)),
    path("v1/test/echo-anthropic", view(ECHO_ANTHROPIC)),
    *project_urls,
]
