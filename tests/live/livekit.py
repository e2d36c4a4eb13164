"""Run ``mm`` as a user would, in subprocesses, against an engine in a temporary home."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from quotewise.live.server import free_port


class MM:
    """``mm`` commands with QUOTEWISE_HOME in a temporary directory; the engine is killed at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.db = str(home / "state.db")
        self.env = {**os.environ, "QUOTEWISE_HOME": str(home), "COLUMNS": "200"}

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "quotewise.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"mm {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}"
            )
        return proc

    def json(self, *args: str) -> object:
        return json.loads(self(*args).stdout)

    def engine_info(self) -> dict | None:
        path = self.home / "config" / "engine.json"
        return json.loads(path.read_text()) if path.exists() else None

    def wait(self, check, timeout: float = 60.0, what: str = "condition") -> None:
        """Poll ``check`` until true; the bound is generous because the suite runs on two workers and
        each look may start an ``mm`` process (a second or more on a loaded 2-vCPU machine)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; engine log:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        path = self.home / "data" / "engine.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def kill_engine(self) -> None:
        info = self.engine_info()
        if info is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(info["pid"]), signal.SIGKILL)


def pid_gone(pid: int) -> bool:
    from quotewise.live.client import pid_alive

    return not pid_alive(pid)


@contextlib.contextmanager
def served(app: Any, port: int | None = None, wait_s: float = 30.0) -> Iterator[str]:
    """``app`` served by uvicorn on a thread of this process until the block ends; yields its URL.
    ``log_config=None`` leaves the test's logging as it is."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + wait_s
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the engine did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(wait_s)
