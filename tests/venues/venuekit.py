"""``mm venue serve`` and an engine driven through ``mm``, as a user runs them: the shared part of
the live-venue done-when checks (Binance, Polymarket, Kalshi)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from live.livekit import MM, pid_gone

READY_WAIT_S = 60.0  # an emulator reads its whole file before it listens


@dataclass
class Emulator:
    """A running ``mm venue serve``: its URL, its process and where its output goes."""

    url: str
    proc: subprocess.Popen
    output: Path

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/emulator/stats", timeout=10) as r:
            return json.load(r)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(mm: MM, folder: Path, exchange: str, *args: str) -> Iterator[Emulator]:
    """``mm venue serve EXCHANGE ARGS`` until its banner shows; always terminated. Its output goes to
    a file (a pipe nobody reads would fill up and stall it)."""
    port = free_port()
    output = folder / f"{exchange}-emulator.out"
    command = [sys.executable, "-m", "quotewise.cli", "venue", "serve", exchange, "--port", str(port), *args]
    with output.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**mm.env, "PYTHONUNBUFFERED": "1"}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_WAIT_S
        while f"{exchange} emulator on {url} (" not in output.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"mm venue serve did not get ready:\n{output.read_text()}")
            time.sleep(0.2)
        yield Emulator(url, proc, output)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class StatusWatch:
    """Every status the maker showed while the engine was up: "running through" means no sample
    was ever anything else (a maker that failed and was resumed would otherwise go unnoticed)."""

    def __init__(self, mm: MM, maker: str) -> None:
        self.mm = mm
        self.maker = maker
        self.seen: list[str] = []

    def sample(self) -> dict[str, Any]:
        status = self.mm.json("status", self.maker, "--json")
        self.seen.append(status["status"])
        assert status["status"] == "running", (
            f"{self.maker} left running: {status['status']}: {status['reason']}"
        )
        return status

    def run_for(self, seconds: float, until_start: float) -> None:
        """Keep sampling until ``seconds`` after ``until_start`` (monotonic)."""
        while time.monotonic() < until_start + seconds:
            self.sample()
            time.sleep(0.5)


def quoting_and_filled(status: dict[str, Any]) -> bool:
    """Working quotes at the exchange and at least one fill: the maker really trades."""
    quotes = status["quotes"]
    return status["fills"] >= 1 and bool(quotes) and all(q["status"] == "working" for q in quotes)


def kill_engine(mm: MM) -> None:
    """SIGKILL, as a crash: no cancels, no goodbye; our orders stay at the exchange."""
    info = mm.engine_info()
    assert info is not None
    mm.kill_engine()
    mm.wait(lambda: pid_gone(int(info["pid"])), timeout=10, what="the killed engine to be gone")


@dataclass(frozen=True)
class Session:
    """How long a crash test trades: before the kill, while down, after the restart (seconds)."""

    first_run_s: float
    down_s: float
    second_run_s: float
    first_fill_wait_s: float = 60.0


def trade_through_a_crash(mm: MM, maker: str, start_args: list[str], session: Session) -> StatusWatch:
    """On the running engine, ``mm start ARGS --name MAKER``, trading until a fill and for the first
    run; then SIGKILL, a pause with our orders left at the venue (they may fill: the restart must book
    them), a restart that must resume the maker, the second run, and ``mm stop``. Every status
    sampled is kept."""
    watch = StatusWatch(mm, maker)
    started = time.monotonic()
    assert mm("start", *start_args, "--name", maker).stdout.strip().splitlines()[-1] == maker
    mm.wait(
        lambda: quoting_and_filled(watch.sample()),
        timeout=session.first_run_s + session.first_fill_wait_s,
        what="quotes and a fill",
    )
    watch.run_for(session.first_run_s, started)
    kill_engine(mm)
    time.sleep(session.down_s)
    mm("engine", "start", "--db", mm.db)
    restarted = time.monotonic()
    mm.wait(lambda: watch.sample()["status"] == "running", what=f"{maker} to resume")
    watch.run_for(session.second_run_s, restarted)
    mm("stop", maker)
    return watch


def stored_equals_venue(stored: list[str], at_venue: list[str]) -> None:
    """Every trade the venue made is stored once, and nothing else."""
    assert at_venue, "the maker never traded"
    assert len(stored) == len(set(stored)), f"a fill stored twice: {sorted(stored)}"
    assert sorted(stored) == sorted(at_venue), (
        f"missing: {sorted(set(at_venue) - set(stored))}, extra: {sorted(set(stored) - set(at_venue))}"
    )
