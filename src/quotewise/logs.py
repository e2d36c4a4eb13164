"""The engine's log: standard ``logging``, one line per record, to a rotating file and to stderr.

A line is ``<UTC time> <LEVEL> <logger> <message> key=value ...``, so that ``grep maker=mm-3f9a1c``
finds one maker's story; a record logged with an exception is followed by its traceback. Context goes
in ``extra=kv(maker=..., ...)``. Our own loggers (``quotewise.*``) log from INFO up, the libraries'
from WARNING. The log records lifecycle events, never per-update ones, and never the API token.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

MAX_BYTES = 10_000_000
BACKUPS = 5  # engine.log.1 ... engine.log.5: at most 60 MB in all
_OURS = "_quotewise"  # marks the handlers configure() installed


def kv(**fields: Any) -> dict[str, Any]:
    """Context for a record: ``logger.info("maker started", extra=kv(maker=maker_id))``."""
    return {"kv": fields}


def _value(value: Any) -> str:
    """A value as it reads in a line: bare when it is one word, else quoted (JSON string)."""
    text = str(value)
    if text and not any(c.isspace() or c in "\"'=" for c in text):
        return text
    return json.dumps(text)


class LineFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...``; the time in UTC, to the millisecond."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "kv", None) or {}
        line = super().formatMessage(record)
        return " ".join([line, *(f"{k}={_value(v)}" for k, v in fields.items())])


def configure(path: Path) -> Path:
    """Send records to ``path`` (rotated at 10 MB, 5 kept) and to stderr.
    Called once by the engine's ``serve()``; called again (tests), it replaces the handlers it
    installed before and leaves any other alone. Returns the file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    formatter = LineFormatter()
    handlers: list[logging.Handler] = [
        RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"),
        logging.StreamHandler(sys.stderr),
    ]
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("quotewise").setLevel(logging.INFO)
    return path
