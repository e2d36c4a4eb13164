"""Where the live engine keeps its files: config (token, the running engine's address) and data.

``QUOTEWISE_HOME`` puts both under one directory (tests use it so nothing touches the real home).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import platformdirs


def _home() -> Path | None:
    value = os.environ.get("QUOTEWISE_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    path = home / "config" if home else Path(platformdirs.user_config_dir("quotewise"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir("quotewise"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def token_path() -> Path:
    return config_dir() / "token"


def engine_path() -> Path:
    """Written by a running engine: its pid, address and database; removed on a clean exit."""
    return config_dir() / "engine.json"


def log_path() -> Path:
    return config_dir() / "engine.log"


def ensure_token() -> str:
    """The API token, created (readable by the user only) the first time an engine starts."""
    path = token_path()
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def read_token() -> str | None:
    path = token_path()
    return path.read_text().strip() if path.exists() else None


def write_engine_info(info: dict[str, Any]) -> None:
    path = engine_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


def read_engine_info() -> dict[str, Any] | None:
    path = engine_path()
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def clear_engine_info(pid: int) -> None:
    """Remove the engine file if it is still this process's."""
    info = read_engine_info()
    if info is not None and info.get("pid") == pid:
        engine_path().unlink(missing_ok=True)
