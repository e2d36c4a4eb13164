"""Find a strategy by name: a built-in, ``path/to/file.py:ClassName`` or ``package.module:ClassName``."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from pydantic import ValidationError

from quotewise.errors import ConfigError, QuotewiseError, RunError, one_line
from quotewise.quoting.base import Strategy
from quotewise.quoting.builtin import BUILTIN


def strategy_class(spec: str) -> type[Strategy]:
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        raise ConfigError(
            f"unknown strategy {spec!r}; built-ins are {', '.join(sorted(BUILTIN))}, "
            "or give your own as path/to/file.py:ClassName or package.module:ClassName"
        )
    where, _, cls_name = spec.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.exists():
            raise ConfigError(f"strategy file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(f"quotewise_user_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"cannot load strategy file {path}")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise RunError(exc, f"strategy file {path}") from exc
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ConfigError(f"cannot import strategy module {where!r}: {exc}") from exc
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{spec}: {cls_name!r} is not a subclass of quotewise.quoting.base.Strategy")
    return cls


def make_strategy(spec: str, settings: dict[str, object] | None = None) -> Strategy:
    """Build a strategy with its parameters validated (unknown keys are named in the error)."""
    cls = strategy_class(spec)
    try:
        return cls(**(settings or {}))
    except QuotewiseError:
        raise
    except ValidationError as exc:
        unknown = any(e["type"] == "extra_forbidden" for e in exc.errors())
        known = f" (parameters: {', '.join(sorted(cls.Params.model_fields))})" if unknown else ""
        raise ConfigError(f"strategy {spec!r}: {one_line(exc)}{known}") from None
    except Exception as exc:
        raise RunError(exc, f"strategy {spec!r}") from exc
