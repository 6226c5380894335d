"""The project's ASGI application with settlements counted (tests/ops/counting.py),
for tests that run it in server processes of their own."""

from __future__ import annotations

from nexai.asgi import application
from tests.ops import counting

counting.install()

__all__ = ["application"]
