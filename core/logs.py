"""Log records: the request id they belong to, secrets taken out, and JSON lines.

`NEXAI_LOG_FORMAT=json` (settings.LOGGING) writes one JSON object per line, for log
collectors; the default stays the plain one-line format of `make run`. Both go
through `RedactSecrets`, and both know the request id: the relay sets
`request_id_var` once per request, and every record logged while that request is
served (in its task, or a thread it hands work to) carries it.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str] = ContextVar("nexai_request_id", default="")

# What a credential looks like wherever it may end up in a message or a traceback:
# customer and upstream keys (sk-..., sk-ant-..., Google's AIza...), bearer and
# api-key headers, key=... query strings, and the password in a service URL
# (postgres://user:PASSWORD@host, redis://:PASSWORD@host).
_SECRETS = re.compile(
    r"(?P<plain>sk-[A-Za-z0-9_\-]{6,}|AIza[A-Za-z0-9_\-]{10,}|whsec_[A-Za-z0-9]+"
    r"|Bearer\s+[^\s'\",]+"
    r"|\b(?:api[-_]?key|x-api-key|key|token|secret|password)(?:['\"]?\s*[=:]\s*['\"]?)[^\s'\",&]+)"
    r"|(?P<scheme>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^@\s/]+)@",
    re.IGNORECASE,
)

# Attributes every LogRecord has; anything else was passed as `extra=` and is kept
# (but not uvicorn's copy of the message with terminal colours).
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


def redact(text: str) -> str:
    def hide(match: re.Match[str]) -> str:
        if match.group("password") is not None:
            return f"{match.group('scheme')}[redacted]@"
        return "[redacted]"

    return _SECRETS.sub(hide, text)


class RequestId(logging.Filter):
    """Stamps each record with the id of the request being served ('' outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class RedactSecrets(logging.Filter):
    """Renders the message and any traceback once, with credentials replaced. A
    traceback's locals are not printed by the standard formatters, but its message
    (an upstream's error text, a connection URL) may carry a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    request_id, any `extra=` fields, and the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """settings.LOGGING for `fmt` "plain" (the default) or "json"."""
    formatter = (
        {"()": "core.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["request_id", "redact"],
    }
    loggers: dict[str, Any] = {
        "django.db.backends": {"level": "WARNING"},
        # One line per upstream call would cost CPU on the hot path and say nothing
        # the usage records do not.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    }
    if fmt == "json":
        # uvicorn gives its loggers plain handlers before Django starts; in JSON mode a
        # worker's own lines (startup, errors) become JSON too. Configuring "uvicorn"
        # resets its children, which would switch on the access log that
        # --no-access-log switched off (uvicorn logs access while the logger has a
        # handler, at a cost per request): it stays off, explicitly. The usage records
        # are the access log of /v1.
        loggers["uvicorn"] = {"handlers": ["console"], "level": "INFO", "propagate": False}
        loggers["uvicorn.access"] = {"handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "core.logs.RequestId"},
            "redact": {"()": "core.logs.RedactSecrets"},
        },
        "formatters": {"main": formatter},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }
