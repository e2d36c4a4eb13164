"""Shared fixtures: the real market data beside the project, skipped with a reason when absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("QUOTEWISE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
).resolve()


def shared_path(*parts: str) -> Path:
    """Path of a file under ../shared/data; skips the calling test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real market data not available: {path} is missing (expected ../shared/data beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def synthetic_gbm(tmp_path_factory) -> Path:
    """A `mm model train` directory holding a GBM fitted on a synthetic market (the feature defaults),
    trained once per session for the tests that lean quotes on a model."""
    pytest.importorskip("lightgbm")
    from quotewise.backtest.source import synthetic
    from quotewise.intelligence.features import FeatureConfig
    from quotewise.intelligence.flow_model import train

    out = tmp_path_factory.mktemp("flow") / "model"
    train(synthetic(40_000, seed=3), ["synthetic"], out, FeatureConfig(), model="gbm")
    return out


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real market data not available: {SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture
def mm(tmp_path):
    """``mm`` run as a user would, in subprocesses, with a temporary home; the engine is killed at the end."""
    from live.livekit import MM

    runner = MM(tmp_path)
    yield runner
    runner.kill_engine()


# tests/test_compile_notice.py compiles the whole simulator from an empty numba cache (about 45 s of
# one CPU, mostly waiting for nothing else): its first run starts as soon as the test is collected and
# goes on beside the rest of the suite on the machine's other CPU.
COLD_TEST = "test_a_backtest_says_it_compiles_the_simulator_on_the_first_run_only"
COLD_RUN: dict[str, object] = {}


def cold_backtest(folder: Path, name: str) -> list[str]:
    """``mm backtest`` of a small synthetic run into ``folder/name``."""
    out = str(folder / name)
    return [sys.executable, "-m", "quotewise.cli", "backtest", "--events", "20000", "--quiet", "--no-report",
            "--out", out]  # fmt: skip


def cold_env(folder: Path) -> dict[str, str]:
    """The environment of a first run on a fresh machine: an empty numba cache of its own."""
    return {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba")}


def start_cold_run() -> subprocess.Popen:
    """The first run of the compile check, in a fresh folder with an empty cache (kept in COLD_RUN)."""
    folder = Path(tempfile.mkdtemp(prefix="qw-cold-compile-"))
    COLD_RUN["folder"] = folder
    COLD_RUN["process"] = process = subprocess.Popen(
        cold_backtest(folder, "first"),
        env=cold_env(folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process


def pytest_collection_finish(session: pytest.Session) -> None:
    # under pytest-xdist the workers share the CPUs already: the test starts its own run
    parallel = os.environ.get("PYTEST_XDIST_WORKER") or getattr(session.config.option, "numprocesses", None)
    if not parallel and any(item.name == COLD_TEST for item in session.items):
        start_cold_run()


def pytest_sessionfinish(session: pytest.Session) -> None:
    process = COLD_RUN.get("process")
    if isinstance(process, subprocess.Popen) and process.poll() is None:
        process.kill()
        process.communicate()
    folder = COLD_RUN.get("folder")
    if isinstance(folder, Path):
        shutil.rmtree(folder, ignore_errors=True)
