"""What each catalogued model can do, for the model catalogue: vision, tools,
reasoning, and its input and output modalities.

The providers file does not describe capabilities yet, so they come from the model
families below; a model given a `capabilities` list (a future catalogue field) wins
over the table. Unknown chat models claim nothing rather than something false."""

from __future__ import annotations

from dataclasses import dataclass

# (id prefix, vision, tools, reasoning); the first matching prefix decides.
_CHAT_FAMILIES: list[tuple[str, bool, bool, bool]] = [
    ("gpt-5", True, True, True),
    ("gpt-4.1", True, True, False),
    ("gpt-4o", True, True, False),
    ("o1", True, True, True),
    ("o3", True, True, True),
    ("o4", True, True, True),
    ("claude-", True, True, True),
    ("gemini-", True, True, True),
    ("deepseek-reasoner", False, False, True),
    ("deepseek-", False, True, False),
    ("grok-4", True, True, True),
    ("grok-3-mini", False, True, True),
    ("grok-", False, True, False),
    ("llama-", False, True, False),
    ("qwen-", False, True, False),
]

_MODALITIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "embedding": (("text",), ("embedding",)),
    "image": (("text",), ("image",)),
    "speech": (("text",), ("audio",)),
    "transcription": (("audio",), ("text",)),
}


@dataclass(frozen=True)
class Capabilities:
    vision: bool
    tools: bool
    reasoning: bool
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def tags(self) -> list[str]:
        return [n for n in ("vision", "tools", "reasoning") if getattr(self, n)]


def model_capabilities(model: object) -> Capabilities:
    kind = getattr(model, "type", "chat")
    if kind != "chat":
        inputs, outputs = _MODALITIES.get(kind, (("text",), ("text",)))
        return Capabilities(False, False, False, inputs, outputs)
    declared = getattr(model, "capabilities", None)
    if isinstance(declared, list | tuple):
        vision, tools, reasoning = (n in declared for n in ("vision", "tools", "reasoning"))
    else:
        public_id = str(getattr(model, "public_id", "")).lower()
        vision, tools, reasoning = next(
            (f[1:] for f in _CHAT_FAMILIES if public_id.startswith(f[0])), (False, False, False)
        )
    return Capabilities(
        vision, tools, reasoning, ("text", "image") if vision else ("text",), ("text",)
    )
