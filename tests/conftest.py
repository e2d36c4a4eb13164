"""Shared fixtures: the real market data beside the project, skipped with a reason when absent."""

from __future__ import annotations

import os
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
