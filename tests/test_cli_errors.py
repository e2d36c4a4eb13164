"""Bad input at the command line: one clear line, the right exit code, and nothing changed or lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow.parquet as pq
import pytest

FAST = ("--events", "60000", "--quiet", "--no-report")


def mm(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """``mm`` in a subprocess: stderr is a pipe, not a terminal, as in a script or a log."""
    return subprocess.run(
        [sys.executable, "-m", "quotewise.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--set", "spread=-3ticks"), "spread: must be >= 0, got '-3ticks'"),
        (("--set", "spread=0"), "spread 0 needs vol_mult > 0 or a min_spread"),
        (("--set", "min_spread=-1bp"), "min_spread: must be >= 0, got '-1bp'"),
        (("--min-spread", "0"), "min_spread: must be > 0, got 0ticks"),
        (("--set", "level_spacing=0"), "level_spacing: must be > 0"),
        (("--taker-fee", "1e9"), "taker_fee: 1e+09 is 1e+13 bp of notional; fees are within +-10%"),
        (("--maker-fee", "-20%"), "maker_fee"),
        (("--set", "size=0.5"), "size 0.5 units is not a whole number of the venue's size step 1"),
        (("--contract-size", "-10"), "--contract-size: Input should be greater than 0"),
    ],
)
def test_invalid_settings_are_refused_with_exit_2_and_write_nothing(tmp_path, args, says):
    out = tmp_path / "run"
    proc = mm("backtest", *FAST, "--out", str(out), *args)
    assert proc.returncode == 2, proc.stdout
    assert says in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1  # one line
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--set", "spread=-1tick"), "spread: must be >= 0"),
        (("--taker-fee", "1e9"), "fees are within +-10%"),
        (("--set", "threshold=-2ticks"), "threshold: must be >= 0"),
    ],
)
def test_mm_quote_refuses_the_same_settings(args, says):
    proc = mm("quote", "--mid", "100", *args)
    assert proc.returncode == 2 and says in proc.stderr


STRATEGY = """
from quotewise.quoting.base import Quote, QuoteSet, Strategy


class Boom(Strategy):
    name = "boom"

    def quotes(self, view):
        self.n = getattr(self, "n", 0) + 1
        if self.n > 40:
            return {}["missing"]
        if view.best_bid is None or view.best_ask is None:
            return QuoteSet()
        return QuoteSet([Quote(view.best_bid, 1)], [Quote(view.best_ask, 1)])
"""


def test_a_strategy_that_raises_is_one_line_naming_file_line_and_exception(tmp_path):
    (tmp_path / "boom.py").write_text(textwrap.dedent(STRATEGY))
    out = tmp_path / "run"
    proc = mm("backtest", *FAST, "--strategy", "boom.py:Boom", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 1
    line = f"error: strategy 'boom' raised KeyError at {tmp_path / 'boom.py'}:11 in quotes: 'missing'"
    assert proc.stderr.startswith(line), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    # nothing recorded is lost: the orders so far are in a readable file, the traceback in error.log
    assert pq.read_table(out / "orders.parquet").num_rows > 0
    assert "Traceback" in (out / "error.log").read_text() and str(out / "error.log") in proc.stderr


def test_debug_prints_the_traceback(tmp_path):
    (tmp_path / "boom.py").write_text(textwrap.dedent(STRATEGY))
    out = str(tmp_path / "r")
    proc = mm("backtest", *FAST, "--strategy", "boom.py:Boom", "--debug", "--out", out, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr and "KeyError" in proc.stderr


def test_a_strategy_file_that_does_not_compile_is_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("def quotes(:\n")
    proc = mm("backtest", *FAST, "--strategy", "broken.py:X", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"raised SyntaxError at {tmp_path / 'broken.py'}:1" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_errors_are_not_wrapped_mid_path_when_stderr_is_not_a_terminal(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "and-a-long-file-name-too.gz"
    proc = mm("backtest", "--data", str(deep), *FAST)
    assert proc.returncode == 2
    assert str(deep) in proc.stderr.replace("\n", "") and str(deep) in proc.stderr  # on one line
    assert proc.stderr.count("\n") == 1
