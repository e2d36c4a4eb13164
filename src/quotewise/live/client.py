"""Talking to the running engine from separate shell invocations (what the ``mm`` lifecycle commands use)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import httpx

from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live import paths

NOT_RUNNING = "no engine running (start one with: mm engine start)"
START_TIMEOUT_S = 180.0  # mm start: the engine reads the whole data file before answering


class EngineNotRunning(QuotewiseError):
    pass


class EngineRefused(QuotewiseError):
    """The engine answered with an error (unknown maker, invalid value, wrong token)."""


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (a killed engine nobody has reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running_engine() -> dict[str, Any] | None:
    """The engine file's contents if its process is alive, else None."""
    info = paths.read_engine_info()
    if info is None or not pid_alive(int(info.get("pid", -1))):
        return None
    return info


API_KEY_ENV = "QW_API_KEY"


def api_key() -> tuple[str, str]:
    """``(key, where it came from)``: ``$QW_API_KEY``, else the engine's token file (an admin)."""
    key = os.environ.get(API_KEY_ENV)
    if key:
        return key, API_KEY_ENV
    token = paths.read_token()
    if token is None:
        raise ConfigError(
            f"no API key: set {API_KEY_ENV}, or start the engine here (its token is {paths.token_path()})"
        )
    return token, str(paths.token_path())


def engine_url(info: dict[str, Any]) -> str:
    """The running engine's base URL (an engine from before URLs were recorded: 127.0.0.1)."""
    return str(info.get("url") or f"http://127.0.0.1:{info['port']}")


def error_detail(r: httpx.Response) -> str:
    """The reason of an API error (FastAPI's validation errors as ``where: what``, each)."""
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


class EngineClient:
    def __init__(self, actor: str = "cli", timeout: float = 15.0) -> None:
        info = running_engine()
        if info is None:
            raise EngineNotRunning(NOT_RUNNING)
        key, self.key_source = api_key()
        self.base = engine_url(info)
        cert = info.get("tls_cert")  # over TLS our own certificate is the authority that signs it
        self.verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cert) if cert else True
        self.info = info
        self.headers = {"Authorization": f"Bearer {key}", "X-Actor": actor}
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        timeout: float | None = None,
    ) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            r = httpx.request(
                method,
                self.base + path,
                json=body,
                params=params,
                headers=self.headers,
                timeout=timeout,
                verify=self.verify,
            )
        except httpx.ConnectError:
            raise EngineNotRunning(NOT_RUNNING) from None
        except httpx.TimeoutException:
            raise EngineRefused(
                f"the engine did not answer {method} {path} within {timeout:g} s; it may still be at it "
                f"(mm list shows what it has; its log is {paths.log_path()})"
            ) from None
        if r.status_code >= 400:
            detail = error_detail(r)
            if r.status_code == 401:
                detail = f"{detail}; this shell's key is from {self.key_source}"
            raise EngineRefused(f"{detail} (HTTP {r.status_code})")
        return r.json()

    def health(self) -> dict[str, Any]:
        return self.call("GET", "/health")

    def start(self, spec: dict[str, Any]) -> str:
        """A new maker's id. The engine reads its data first, which takes a while for a large file."""
        return self.call("POST", "/makers", spec, timeout=START_TIMEOUT_S)["id"]

    def start_by_flags(self, values: dict[str, Any]) -> str:
        """A new maker from ``mm start``'s arguments by name, flat (``POST /maker/start``)."""
        return self.call("POST", "/maker/start", values, timeout=START_TIMEOUT_S)["id"]

    def stop(self, maker_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/makers/{maker_id}")

    def list(self) -> list[dict[str, Any]]:
        return self.call("GET", "/makers")

    def status(self, maker_id: str) -> dict[str, Any]:
        return self.call("GET", f"/makers/{maker_id}")

    def config(self, maker_id: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
        if not changes:
            return self.call("GET", f"/makers/{maker_id}/config")
        return self.call("PATCH", f"/makers/{maker_id}/config", {"changes": changes})

    def halt(self, maker_id: str, flatten: bool = False) -> dict[str, Any]:
        return self.call("POST", f"/maker/{maker_id}/halt", params={"flatten": str(flatten).lower()})

    def resume(self, maker_id: str) -> dict[str, Any]:
        return self.call("POST", f"/maker/{maker_id}/resume")

    def fills(self, maker_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/makers/{maker_id}/fills")

    def audit(self, maker_id: str | None = None) -> list[dict[str, Any]]:
        return self.call("GET", "/audit", params={"maker_id": maker_id} if maker_id else None)

    def books(self) -> list[dict[str, Any]]:
        return self.call("GET", "/books")

    def book(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/books/{name}")

    def set_book_limits(self, name: str, limits: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/books/{name}/limits", limits)

    def stop_engine(self) -> None:
        self.call("POST", "/engine/stop")
