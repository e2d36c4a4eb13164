"""API keys for a venue: from ``QW_<EXCHANGE>_API_KEY`` / ``QW_<EXCHANGE>_SECRET``, else a keys file
only its owner can read. Keys are held in memory only: never logged, never in the database, never
in a repr (the engine's log and ``mm status`` may be shared)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from quotewise.errors import ConfigError
from quotewise.live.paths import config_dir

KEYS_FILE = "keys.yaml"


@dataclass(frozen=True)
class Keys:
    """One exchange's credentials; ``repr`` shows whether they are set, never what they are."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Keys(exchange credentials from {self.source or 'nowhere'})"


def keys_path() -> Path:
    """``$QW_KEYS_FILE``, else ``keys.yaml`` in the config directory (beside the API token)."""
    return Path(os.environ.get("QW_KEYS_FILE") or config_dir() / KEYS_FILE)


def _env_name(exchange: str, what: str) -> str:
    return f"QW_{exchange.upper()}_{what}"


def _from_file(path: Path, exchange: str) -> Keys | None:
    """``exchange: {api_key: ..., secret: ...}`` from a YAML file readable by its owner alone."""
    if not path.exists():
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigError(f"{path} can be read by others: chmod 600 {path} (it holds API secrets)")
    try:
        entries = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:  # its message quotes the line, which may hold a secret: only where
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}") from None
    entry = entries.get(exchange) if isinstance(entries, dict) else None
    if entry is None:
        return None
    if not isinstance(entry, dict) or not entry.get("api_key") or not entry.get("secret"):
        raise ConfigError(f"{path}: {exchange} needs both api_key and secret")
    return Keys(str(entry["api_key"]), str(entry["secret"]), str(path))


def load_keys(exchange: str) -> Keys:
    """The keys to trade on ``exchange``; a clear error naming both places when neither has them."""
    key = os.environ.get(_env_name(exchange, "API_KEY"))
    secret = os.environ.get(_env_name(exchange, "SECRET"))
    if key and secret:
        return Keys(key, secret, "environment")
    if key or secret:
        missing = _env_name(exchange, "SECRET" if key else "API_KEY")
        raise ConfigError(f"{missing} is not set (both the API key and the secret are needed)")
    path = keys_path()
    keys = _from_file(path, exchange)
    if keys is None:
        raise ConfigError(
            f"no API keys for {exchange}: set {_env_name(exchange, 'API_KEY')} and "
            f"{_env_name(exchange, 'SECRET')}, or add {exchange}: {{api_key, secret}} to {path} (mode 600)"
        )
    return keys
