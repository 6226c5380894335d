"""POST /v1/embeddings: forwarded as it is, charged by the input tokens the upstream
reports (nexai's estimate, marked, when it reports none)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from billing.pricing import token_charge
from gateway import validation
from gateway.calls import Meter, json_passthrough, metered_at
from gateway.relay import Metered
from providers.catalogue import ModelInfo


def _plan(bound: int) -> Callable[[ModelInfo], tuple[int, Meter]]:
    def plan(model: ModelInfo) -> tuple[int, Meter]:
        def meter(raw: bytes, content_type: str) -> Metered:
            tokens = (orjson.loads(raw).get("usage") or {}).get("prompt_tokens")
            estimated = not isinstance(tokens, int)
            tokens = bound if estimated else tokens
            charge = token_charge(model.prices, input_tokens=tokens, output_tokens=0)
            return metered_at(charge, raw, content_type, input_tokens=tokens, estimated=estimated)

        # Reserved at the bound, so concurrent requests cannot overdraw the wallet.
        return token_charge(model.prices, input_tokens=bound, output_tokens=0), meter

    return plan


create = json_passthrough(
    "embeddings", "embeddings", model_type="embedding", check=validation.embeddings_body, plan=_plan
)
