"""The usage record of one request, typed, from admission to the writer.

Admission stores it with the reservation (status 0: in flight), heartbeats replace it
with what a stream has delivered so far, settlement queues the final one, and the
writer turns it into a `UsageRecord` row and a share of a ledger entry.

On the wire (Redis, the charge journal) it is a JSON array of the field values in
declaration order: about a third of the size of a keyed object, and parsed without a
key lookup per field. New fields go at the END, with a default, so that writers and
servers of two releases can read each other's records during a rolling deploy (a
shorter array takes the defaults, a longer one loses only the fields it does not
know).
"""

from __future__ import annotations

import dataclasses
import operator
import time
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class Record:
    request_id: str
    user_id: int
    api_key_id: int | None
    endpoint: str
    model: str
    stream: bool = False
    reserved: int = 0  # credits held by admission; not a column
    charge: int = 0  # credits
    status: int = 0  # 0 while in flight
    error_code: str = ""
    client_disconnected: bool = False
    estimated: bool = False
    provider: str = ""
    upstream_model: str = ""
    upstream_key_id: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    units: int = 0
    latency_ms: int = 0
    ttft_ms: int | None = None
    created_at: float = field(default_factory=time.time)  # unix seconds
    # The parts of input_tokens and output_tokens priced apart (billing.pricing).
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    # [[component, tokens, credits per 1M tokens], ...] as charged.
    charge_lines: list[list[Any]] = field(default_factory=list)
    cost: int = 0  # what the upstream charged us, credits
    # New fields here, at the end, with a default (see the module docstring).

    def with_values(self, **values: Any) -> Record:
        """A copy with some fields replaced; an unknown name is a TypeError, so a
        metered value with no field to hold it fails loudly instead of vanishing."""
        return dataclasses.replace(self, **values)

    def dumps(self) -> bytes:
        return orjson.dumps(_values(self))

    @classmethod
    def loads(cls, raw: bytes | str) -> Record:
        values = orjson.loads(raw)
        return cls(*values[: len(FIELDS)])


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Record))
_values = operator.attrgetter(*FIELDS)  # every field, in order, as one tuple
