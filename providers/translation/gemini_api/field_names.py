"""Google's JSON takes a field by its lowerCamelCase name or by its proto name
(snake_case), and Google's own SDKs send some of each (the Python SDK writes an inline
image's `mime_type`). Requests are read in one spelling: camelCase, the one Google
documents. Only field names are renamed, never the names inside free-form values
(function arguments and results, JSON schemas' property names, labels)."""

from __future__ import annotations

from typing import Any

# Fields whose values are free-form: left exactly as they are.
_FREE = frozenset(
    {
        "args", "response", "parameters", "parametersJsonSchema", "responseSchema",
        "responseJsonSchema", "responseJsonSchemaOrdering", "labels", "data", "text",
        "thoughtSignature", "value", "partialArgs",
    }
)  # fmt: skip


def camel(name: str) -> str:
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_case_request(value: Any) -> Any:
    """`value` (a generateContent or countTokens request) with every field name in
    camelCase; the same object when nothing needed renaming."""
    if isinstance(value, list):
        items = [camel_case_request(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    changed = False
    for name, item in value.items():
        key = camel(name)
        converted = item if key in _FREE else camel_case_request(item)
        changed = changed or key != name or converted is not item
        out[key] = converted
    return out if changed else value
