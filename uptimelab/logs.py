"""Logging: plain lines, or one JSON object a line (``--log-format json``).

Records may carry ``component`` (collector, store, breaker, spool, stats, probe), ``category`` and
``site`` extras; the JSON form has them as fields. Credentials in URLs are redacted either way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from .domain.redaction import redact

_EXTRAS = ("component", "category", "site")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, component, category, site."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "component": getattr(record, "component", record.name.rpartition(".")[2]),
            "message": redact(record.getMessage()),
        }
        for key in _EXTRAS[1:]:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = redact(str(value))
        if record.exc_info:
            entry["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class RedactingFormatter(logging.Formatter):
    """The plain format, with credentials in URLs redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(*, level: int = logging.WARNING, fmt: str = "text") -> None:
    """Send uptimelab's logs (and others') to stderr in the chosen format."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
