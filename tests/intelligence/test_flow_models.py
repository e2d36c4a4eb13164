"""The exported models compute what lightgbm and torch compute; the metrics match their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from quotewise.intelligence import gbm, seq
from quotewise.intelligence.metrics import auc, score


def flow_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features with signal in the first two columns, some NaN, and a label to learn."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(np.int64)
    x[rng.random(n) < 0.05, 3] = np.nan
    return x, y


def test_exported_gbm_equals_lightgbm():
    pytest.importorskip("lightgbm")
    x, y = flow_like(3000, 1)
    booster = gbm.train_gbm(x, y, seed=1, rounds=60)
    arrays = gbm.export_gbm(booster)
    test, _ = flow_like(1000, 2)
    test[::50, 0] = np.nan  # a feature trained without NaN, asked with NaN
    expected = booster.predict(test)
    np.testing.assert_allclose(gbm.predict_gbm(arrays, test), expected, rtol=0, atol=1e-6)
    assert gbm.predict_gbm(arrays, test[7]) == pytest.approx(expected[7], abs=1e-6)
    assert auc(y, gbm.predict_gbm(arrays, x)) > 0.8


def test_exported_gbm_survives_a_save_and_load(tmp_path):
    pytest.importorskip("lightgbm")
    x, y = flow_like(800, 3)
    booster = gbm.train_gbm(x, y, seed=0, rounds=20)
    np.savez(tmp_path / "gbm.npz", **gbm.export_gbm(booster))
    with np.load(tmp_path / "gbm.npz") as npz:
        loaded = {k: npz[k] for k in npz.files}
    np.testing.assert_allclose(gbm.predict_gbm(loaded, x), booster.predict(x), atol=1e-6)


def test_exported_lstm_equals_torch():
    pytest.importorskip("torch", reason="torch is the optional ml extra")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6)) * np.array([1, 10, 0.1, 1, 1, 100])
    x[::37, 2] = 50.0  # outliers beyond the clip
    ends = np.arange(seq.WINDOW - 1, 400)
    y = (x[ends, 0] > 0).astype(np.int64)
    net, mean, std = seq.train_seq(x, ends, y, seed=0, epochs=1)
    arrays = seq.export_seq(net, mean, std)
    expected = seq.torch_probabilities(net, mean, std, x, ends)
    np.testing.assert_allclose(seq.predict_seq_many(arrays, x, ends), expected, rtol=0, atol=1e-6)
    one = seq.predict_seq(arrays, x[ends[5] - seq.WINDOW + 1 : ends[5] + 1])
    assert one == pytest.approx(expected[5], abs=1e-6)


def test_auc_counts_ordered_pairs():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.5, 0.5])
    pairs = [
        (pp, pn) for pp, yp in zip(p, y, strict=True) if yp for pn, yn in zip(p, y, strict=True) if not yn
    ]
    expected = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert auc(y, p) == pytest.approx(expected)
    assert auc(np.ones(3), np.array([0.1, 0.2, 0.3])) is None


def test_confident_precision_and_coverage():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.9, 0.2, 0.6, 0.75, 0.1])  # confident: 0.9 (right), 0.2 (right), 0.75 (wrong), 0.1 (wrong)
    out = score(y, p)
    assert out["coverage_at_0.7"] == pytest.approx(4 / 5)
    assert out["precision_at_0.7"] == pytest.approx(2 / 4)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert sum(b["n"] for b in out["calibration"]) == 5


def test_real_binance_gbm_trained_on_spot_predicts_usdm(tmp_path):
    """Train on Binance spot BTCUSDT, score on USD-M BTCUSDT (another instrument, same minutes)."""
    pytest.importorskip("lightgbm")
    from conftest import shared_path
    from quotewise.api import load
    from quotewise.intelligence.features import FeatureConfig
    from quotewise.intelligence.flow_model import evaluate, train

    spot = shared_path("binance", "spot", "btcusdt_20240808.gz")
    usdm = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    summary = train(load(str(spot)), [str(spot)], tmp_path, FeatureConfig(), model="gbm")
    assert summary["training"]["labelled"] > 500
    result, overlap = evaluate(tmp_path, load(str(usdm)), [str(usdm)])
    assert not overlap
    assert result["gbm"]["n"] > 1000 and result["gbm"]["auc"] >= 0.6
