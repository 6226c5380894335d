"""JSON parsed within bounds: nesting depth and element counts are checked so that a
body cannot make the parser (or anything that walks the result) spend memory or stack
out of proportion to its size.

The element counts are bounded BEFORE parsing, from cheap byte counts that can only
overcount (a `{`, `[` or `,` inside a string is counted too), so an ordinary body
costs two or three passes of `bytes.count` and nothing else; only a body whose
overcount passes a limit is measured exactly (strings taken out). A `{}` costs a
parser about 70 bytes of memory for 3 bytes of input: 32 MiB of `{},{},...` would be
2 GiB parsed.

Depth is bounded AFTER parsing: orjson itself refuses more than 1,024 levels, and
what it returns is walked level by level (no recursion) only when the body holds more
brackets than the limit, so a body that cannot be that deep costs nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 128  # levels of objects and arrays; orjson.dumps itself stops at 254
MAX_CONTAINERS = 100_000  # objects and arrays
MAX_VALUES = 1_500_000  # every value and key (an embeddings request: 300,000 token ids)

# bytes.translate tables: keep only what matters to the structure.
_ALL = bytes(range(256))
_NOT_STRUCTURE = _ALL.translate(None, b'[]{},"')


class ShapeError(ValueError):
    """A JSON text beyond the bounds; `message` says which, for a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _outside_strings(data: bytes) -> bytes:
    """The structural bytes of a JSON text (brackets, commas, quotes) outside its
    strings. Escapes are removed first (a JSON string's backslash always starts a
    two-character escape, and `\\\\` pairs before `\\"`), so every quote left opens or
    closes a string: the pieces between quotes alternate outside, inside."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = data.translate(None, _NOT_STRUCTURE)
    return b"".join(structure.split(b'"')[0::2])


def check_counts(
    data: bytes, *, max_containers: int = MAX_CONTAINERS, max_values: int = MAX_VALUES
) -> int:
    """Raise ShapeError when `data` holds more objects and arrays, or more values, than
    allowed. Returns an upper bound of its objects and arrays (for `check_depth`)."""
    containers = data.count(b"{") + data.count(b"[")
    # A value takes at least one byte and is followed by a comma or a bracket, so a
    # short text cannot hold many: count commas only when it could.
    values = containers + data.count(b",") + 1 if len(data) // 2 >= max_values else 0
    if containers <= max_containers and values <= max_values:
        return containers
    structure = _outside_strings(data)
    containers = structure.count(b"{") + structure.count(b"[")
    values = containers + structure.count(b",") + 1
    if containers > max_containers:
        raise ShapeError(
            f"The JSON body has more than {max_containers:,} objects and arrays ({containers:,})."
        )
    if values > max_values:
        raise ShapeError(f"The JSON body has more than {max_values:,} values ({values:,}).")
    return containers


def check_depth(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ShapeError when `value` (parsed JSON) nests objects and arrays more than
    `max_depth` levels deep. Walks one level at a time: no recursion."""
    level = [value]
    for _ in range(max_depth):
        below = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below += [c for c in children if type(c) is dict or type(c) is list]
        if not below:
            return
        level = below
    raise ShapeError(f"The JSON body is nested more than {max_depth} levels deep.")


def loads(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """orjson.loads within the bounds above: ShapeError beyond them, orjson's
    JSONDecodeError for a text that is not JSON."""
    containers = check_counts(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # orjson's own limit, 1,024 levels
            raise ShapeError(
                f"The JSON body is nested more than {max_depth} levels deep."
            ) from None
        raise
    if containers > max_depth and isinstance(value, dict | list):
        check_depth(value, max_depth=max_depth)
    return value
