"""`mm model train` and `mm model eval` end to end on the synthetic market, and their one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quotewise.cli import app
from quotewise.data.store import EventData, write_events
from quotewise.data.synthetic import SYNTH_INSTRUMENT
from quotewise.model.events import ASK, BID, SET, empty_events

runner = CliRunner()
DATA = "synthetic:40000"
HAS_TORCH = importlib.util.find_spec("torch") is not None
METRIC_KEYS = {"auc", "accuracy", "precision_at_0.7", "coverage_at_0.7", "n", "calibration"}


def mm(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flow") / "model"
    which = "all" if HAS_TORCH else "gbm"
    result = mm(
        "model", "train", "--data", DATA, "--out", str(out), "--model", which, "--epochs", "1", "--quiet"
    )
    assert result.exit_code == 0, result.output
    assert "labelled" in result.stdout and "excluded (no mid change within 1s)" in result.stdout
    return out


def test_train_writes_the_model_and_eval_scores_it(model_dir):
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["horizon_ns"] == 1_000_000_000
    assert meta["training"]["labelled"] > 1000 and meta["training"]["excluded_no_change"] >= 0
    result = mm("model", "eval", str(model_dir), "--data", "synthetic:30000", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == ({"gbm", "seq"} if HAS_TORCH else {"gbm"})
    for metrics in out.values():
        assert set(metrics) >= METRIC_KEYS
        assert metrics["n"] > 100 and 0.5 < metrics["auc"] <= 1.0
        assert sum(b["n"] for b in metrics["calibration"]) == metrics["n"]
    # the same market (the synthetic generator's seed 0) that the model was trained on: one warning line
    assert "overlaps the data the model was trained on" in result.stderr


def test_eval_table_and_an_empty_time_range(model_dir):
    result = mm("model", "eval", str(model_dir), "--data", DATA, "--start", "2099-01-01T00:00", "--quiet")
    assert result.exit_code == 2 and "no labelled samples" in result.stderr
    result = mm("model", "eval", str(model_dir), "--data", "synthetic:30000", "--quiet")
    assert result.exit_code == 0 and "AUC" in result.stdout


@pytest.mark.skipif(not HAS_TORCH, reason="torch is the optional ml extra")
def test_seq_only_model(tmp_path):
    result = mm(
        "model",
        "train",
        "--data",
        "synthetic:8000",
        "--out",
        str(tmp_path),
        "--model",
        "seq",
        "--epochs",
        "1",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seq.npz").is_file() and not (tmp_path / "gbm.npz").exists()


def book_only_file(path: Path) -> Path:
    """A Quotewise Parquet file with a moving book and not one trade."""
    ev = empty_events(400)
    for i in range(200):
        for j, side in enumerate((BID, ASK)):
            e = ev[2 * i + j]
            e["local_ts"] = e["exch_ts"] = (i + 1) * 50_000_000
            e["kind"], e["side"], e["size"] = SET, side, 5
            e["price"] = 10_000 + (i % 3) + (0 if side == BID else 2)
    write_events(path, EventData(ev, SYNTH_INSTRUMENT))
    return path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("train", "--data", DATA, "--out", "{tmp}/m", "--model", "forest"), "unknown model 'forest'"),
        (("train", "--data", DATA, "--out", "{tmp}/m", "--horizon", "soon"), "--horizon: cannot read 'soon'"),
        (("eval", "{tmp}/nothing", "--data", DATA), "does not exist"),
        (("eval", "{tmp}", "--data", DATA), "holds no model.json"),
        (("train", "--data", "{tmp}/flat.parquet", "--out", "{tmp}/m", "--model", "gbm"), "no trades"),
        (("eval", "{model}", "--data", DATA, "--start", "yesterday"), "--start 'yesterday'"),
    ],
)
def test_errors_are_one_line(tmp_path, model_dir, args, says):
    book_only_file(tmp_path / "flat.parquet")
    result = mm("model", *(a.format(tmp=tmp_path, model=model_dir) for a in args), "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], result.stderr


def test_seq_features_need_no_torch_to_predict(model_dir):
    """Loading and scoring go through numpy and numba only."""
    from quotewise.intelligence import load_model, predict_gbm

    meta, arrays = load_model(model_dir)
    row = np.zeros(len(meta["features"]))
    assert 0.0 < predict_gbm(arrays["gbm"], row) < 1.0
