"""What a translation left out, for the gateway to tell the caller.

A request translator that takes `notes=TranslationNotes()` records there every part of
the caller's request it dropped because the target dialect cannot carry it (a built-in
tool such as `web_search` that only OpenAI or Anthropic can run). The request still
goes ahead; the gateway shows `notes.warning()` in a response header so the caller can
see why the model never used that tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The response headers the gateway is meant to put notes.warning() and
# notes.settings_warning() in.
WARNING_HEADER = "x-nexai-dropped-tools"
SETTINGS_HEADER = "x-nexai-dropped-settings"


@dataclass
class DroppedTool:
    param: str  # where it was in the caller's request: "tools[8]"
    kind: str  # its type: "web_search", "web_search_20250305"
    name: str | None = None  # its name when it has one (Anthropic server tools do)

    def __str__(self) -> str:
        label = self.kind if not self.name or self.name == self.kind else f"{self.name}"
        return f"{label} ({self.param})"


@dataclass
class TranslationNotes:
    dropped_tools: list[DroppedTool] = field(default_factory=list)
    # Request settings the target dialect has no field for (Gemini's safetySettings,
    # generationConfig.topK...), by where they were in the caller's request.
    dropped_settings: list[str] = field(default_factory=list)

    def drop_tool(self, *, param: str, kind: str, name: str | None = None) -> None:
        self.dropped_tools.append(DroppedTool(param=param, kind=kind, name=name))

    def drop_setting(self, param: str) -> None:
        self.dropped_settings.append(param)

    def settings_warning(self) -> str | None:
        """The value of the `x-nexai-dropped-settings` header: `safetySettings,
        generationConfig.topK`, or None when nothing was dropped. ASCII only."""
        if not self.dropped_settings:
            return None
        return ", ".join(self.dropped_settings).encode("ascii", "replace").decode()

    def headers(self) -> dict[str, str]:
        """The headers that tell the caller what was left out."""
        out = {}
        if tools := self.warning():
            out[WARNING_HEADER] = tools
        if settings := self.settings_warning():
            out[SETTINGS_HEADER] = settings
        return out

    def warning(self) -> str | None:
        """The value of the `x-nexai-dropped-tools` header, or None when nothing was
        dropped: `web_search (tools[8]), tool_search (tools[9])`. ASCII only."""
        if not self.dropped_tools:
            return None
        text = ", ".join(str(tool) for tool in self.dropped_tools)
        return text.encode("ascii", "replace").decode()
