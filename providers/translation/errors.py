"""The one exception translation raises for input it cannot carry across dialects."""

from __future__ import annotations


class TranslationError(ValueError):
    """A request the caller sent cannot be expressed in the upstream's dialect.

    `param` names the field at fault in the caller's own request (for example
    ``messages[1].content[0].image_url``) so the gateway can answer a precise 400
    in the caller's dialect without knowing anything about the translation.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def __repr__(self) -> str:
        return f"TranslationError({self.message!r}, param={self.param!r})"
