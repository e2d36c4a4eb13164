"""Strategy configuration files, so a tested parameter set can be kept, shared and rerun.

A file holds the strategy's name and its parameters; ``--set key=value`` on the command line
overrides single parameters::

    strategy: glft
    params:
      gamma: 0.05
      max_inventory: 5
      interval: 50ms

Unknown top-level keys and parameters the strategy does not have are rejected by name, so a typo
never silently falls back to a default. A strategy given as ``file.py:Class`` with a relative path
is looked up beside the config file first.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from quotewise.errors import ConfigError
from quotewise.quoting.loader import strategy_class

TOP_KEYS = ("strategy", "params")


def _resolve(spec: str, base: Path) -> str:
    where, sep, cls = spec.rpartition(":")
    if sep and where.endswith(".py") and not Path(where).is_absolute() and (base / where).exists():
        return f"{base / where}:{cls}"
    return spec


def load_strategy_config(path: str | Path) -> tuple[str, dict[str, object]]:
    """``(strategy name, params)`` from a YAML file, with every key checked."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with 'strategy:' and 'params:'")
    unknown = sorted(str(k) for k in doc if k not in TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; a strategy config has only {list(TOP_KEYS)}")
    name = doc.get("strategy")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: 'strategy:' must name a strategy (e.g. skew, glft, file.py:Class)")
    raw = doc.get("params") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'params:' must be a mapping of parameter: value")
    name = _resolve(name.strip(), path.parent)
    params = {str(k).replace("-", "_"): v for k, v in raw.items()}
    fields = strategy_class(name).Params.model_fields
    bad = sorted(k for k in params if k not in fields)
    if bad:
        raise ConfigError(
            f"{path}: unknown params {bad} for strategy {name!r}; it takes {', '.join(sorted(fields))}"
        )
    return name, params
