"""The project's ASGI application with settlements counted (tests/ops/counting.py),
for tests that run it in server processes of their own."""

from __future__ import annotations

from gateway import pipeline
from nexai.asgi import application
from tests.ops.counting import counting

pipeline.settle = counting(pipeline.settle)

__all__ = ["application"]
