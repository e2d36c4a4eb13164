"""Errors a user can act on: each names what was wrong and where."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

_OURS = str(Path(__file__).resolve().parent)
_LIBRARIES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})


class QuotewiseError(Exception):
    """Base class for every error Quotewise raises on purpose."""


class DataError(QuotewiseError):
    """Market data that cannot be read or trusted (malformed record, gap, wrong order)."""


class ConfigError(QuotewiseError):
    """A parameter, flag or config file value that is invalid."""


class RunError(QuotewiseError):
    """A run stopped by an exception in code it called, usually a user's strategy.

    The message is one line naming the exception and where it was raised: the innermost frame in the
    user's own code (not in Quotewise, Python or an installed library) when there is one. The full
    traceback is kept in ``traceback`` and, with ``log_dir``, written to ``log_dir/error.log``.
    """

    def __init__(self, exc: BaseException, what: str, log_dir: Path | None = None) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        theirs = [f for f in frames if not f.filename.startswith(_OURS + "/")]
        users = [f for f in theirs if not f.filename.startswith(_LIBRARIES)]
        frame = (users or theirs or frames or [None])[-1]
        where = f" at {frame.filename}:{frame.lineno} in {frame.name}" if frame is not None else ""
        if isinstance(exc, SyntaxError) and exc.filename:  # raised by the compiler, not in a frame
            where = f" at {exc.filename}:{exc.lineno}"
        detail = str(exc).strip().splitlines()
        message = f"{what} raised {type(exc).__name__}{where}"
        super().__init__(f"{message}: {detail[0]}" if detail else message)
        self.traceback = "".join(traceback.format_exception(exc))
        self.log: Path | None = None
        if log_dir is not None:
            self.log = Path(log_dir) / "error.log"
            self.log.write_text(self.traceback, encoding="utf-8")


def one_line(exc: Exception, name: Callable[[str], str] = str) -> str:
    """A pydantic ValidationError (or any error) as one line a person reads: ``field: message; ...``,
    each field shown as ``name(field)`` (a CLI shows its flag)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for e in errors():
        where = ".".join(name(str(p)) for p in e.get("loc", ()))
        message = str(e.get("msg", "")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            message = "unknown parameter"
        if e.get("type") not in ("value_error", "extra_forbidden", "missing") and "input" in e:
            message += f" (got {e['input']!r})"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
