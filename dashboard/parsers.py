"""The management API's JSON parser: djangorestframework's, within the bounds of
core.jsonshape (nesting depth, element counts). The standard library's parser
recurses once per level and fails past about a thousand with a RecursionError, which
djangorestframework does not catch: a 500. Here it is a 400 saying why."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core import jsonshape


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = stream.read() if stream is not None else b""
        try:
            return jsonshape.loads(data)
        except jsonshape.ShapeError as exc:
            raise ParseError(exc.message) from None
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
