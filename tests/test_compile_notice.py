"""The first run on a machine compiles the simulator for 30 s or more: ``mm`` says so on stderr, and
says nothing once numba's cache holds it. An empty ``NUMBA_CACHE_DIR`` stands for a fresh machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import COLD_RUN, cold_backtest, cold_env, start_cold_run
from quotewise.cli_live import ENGINE_COMPILING
from quotewise.console import COMPILING


@pytest.mark.slow
def test_a_backtest_says_it_compiles_the_simulator_on_the_first_run_only():
    # the first run was started at collection beside the rest of the suite (conftest.COLD_RUN), unless
    # the suite runs on several workers
    first_run = COLD_RUN.get("process") or start_cold_run()
    assert isinstance(first_run, subprocess.Popen)
    out, err = first_run.communicate(timeout=900)  # compiles everything: about 40 s
    assert first_run.returncode == 0, err
    assert COMPILING in err.splitlines() and COMPILING not in out
    folder = COLD_RUN["folder"]
    assert isinstance(folder, Path)
    second = subprocess.run(  # the same cache: loaded, not compiled
        cold_backtest(folder, "second"), env=cold_env(folder), capture_output=True, text=True, timeout=600
    )
    assert second.returncode == 0, second.stderr
    assert COMPILING not in second.stderr + second.stdout


def test_engine_start_says_the_first_maker_compiles_the_simulator(mm, tmp_path):
    mm.env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    started = mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    assert started.stderr.splitlines() == [ENGINE_COMPILING]
    assert started.stdout.startswith("engine running on http://127.0.0.1:")
    mm("engine", "stop")
