"""The first run on a machine compiles the simulator for 30 s or more: ``mm`` says so on stderr, and
says nothing once numba's cache holds it. An empty ``NUMBA_CACHE_DIR`` stands for a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from quotewise.cli_live import ENGINE_COMPILING
from quotewise.console import COMPILING


def backtest(tmp_path, name: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    args = ("backtest", "--events", "20000", "--quiet", "--no-report", "--out", str(tmp_path / name))
    done = subprocess.run(
        [sys.executable, "-m", "quotewise.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_a_backtest_says_it_compiles_the_simulator_on_the_first_run_only(tmp_path):
    first = backtest(tmp_path, "first")  # compiles everything: about 40 s
    assert COMPILING in first.stderr.splitlines() and COMPILING not in first.stdout
    second = backtest(tmp_path, "second")  # the same cache: loaded, not compiled
    assert COMPILING not in second.stderr + second.stdout


def test_engine_start_says_the_first_maker_compiles_the_simulator(mm, tmp_path):
    mm.env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    started = mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    assert started.stderr.splitlines() == [ENGINE_COMPILING]
    assert started.stdout.startswith("engine running on http://127.0.0.1:")
    mm("engine", "stop")
