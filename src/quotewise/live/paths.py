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
    """The engine's log (:mod:`quotewise.logs`), under the user data directory."""
    return data_dir() / "engine.log"


def console_path() -> Path:
    """What a background engine printed outside its log at its latest start (a crash before logging
    was set up); rewritten at every start."""
    return data_dir() / "engine.out"


def ensure_token() -> str:
    """The API token, created the first time an engine starts. The file is opened readable by the
    user only (never created with the umask's mode and narrowed afterwards, which leaves a moment when
    others may open it); O_EXCL keeps a token another engine has just written."""
    path = token_path()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


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
