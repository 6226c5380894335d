"""Stand-in for the relay's call of gateway.metrics.request_done, until the relay
makes it: every settlement is counted, with the values of its usage record. The
relay settles each admitted request exactly once (gateway.relay._Settlement), so
this counts what the lead's hook will count.

Gateway modules are imported inside the functions: a server process imports this
right after nexai.asgi has set Django up."""

from __future__ import annotations

from typing import Any


def counting(settle: Any) -> Any:
    from gateway import metrics

    async def settle_and_count(ticket: Any, **values: Any) -> None:
        await settle(ticket, **values)
        record = ticket.record(**values)
        metrics.request_done(
            endpoint=record["endpoint"],
            model=record["model"],
            provider=record.get("provider", ""),
            status=record["status"],
            error_code=record.get("error_code", ""),
            latency_ms=record["latency_ms"],
            ttft_ms=record["ttft_ms"],
            stream=record["stream"],
            input_tokens=record.get("input_tokens", 0),
            output_tokens=record.get("output_tokens", 0),
            charge=record["charge"],
        )

    return settle_and_count


def install() -> None:
    from gateway import pipeline

    pipeline.settle = counting(pipeline.settle)
