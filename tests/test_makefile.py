"""`make bench` installs hftbacktest (which pins numpy below 2.3) in its own environment, never in .venv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_bench_runs_in_its_own_virtual_environment():
    dry = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = dry.stdout.splitlines()
    assert lines and not [line for line in lines if ".venv/" in line]
    runs = [line for line in lines if "bench/compare_hftbacktest.py" in line]
    assert runs and all(line.startswith(".venv-bench/bin/python ") for line in runs)
    assert ".venv-bench/" in (ROOT / ".gitignore").read_text().splitlines()
