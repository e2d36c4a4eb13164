"""Scoring rows by leaf masks (``gbm.score_rows``) gives the tree walk's probabilities to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from quotewise.intelligence import gbm


def random_trees(rng: np.random.Generator, n_trees: int, max_leaves: int, n_features: int) -> dict:
    """Exported-format trees of random shapes (left child after its parent, as ``export_gbm`` lays
    them out), thresholds on a coarse grid so that rows hit them exactly, every missing-value rule."""
    out: dict[str, list] = {k: [] for k in gbm.GBM_KEYS if k != "roots"}
    roots = []

    def grow(leaves: int) -> int:
        i = len(out["feature"])
        for key in out:
            out[key].append(0)
        if leaves == 1:
            out["feature"][i] = -1
            out["value"][i] = float(rng.normal())
            return i
        out["feature"][i] = int(rng.integers(n_features))
        out["threshold"][i] = float(rng.integers(-4, 5)) / 2
        out["default_left"][i] = int(rng.integers(2))
        out["missing"][i] = int(rng.integers(3))
        split = int(rng.integers(1, leaves))
        out["left"][i] = grow(split)
        out["right"][i] = grow(leaves - split)
        return i

    for _ in range(n_trees):
        roots.append(grow(int(rng.integers(1, max_leaves + 1))))
    floats = ("threshold", "value")
    model = {k: np.asarray(v, np.float64 if k in floats else np.int64) for k, v in out.items()}
    model["roots"] = np.asarray(roots, np.int64)
    return model


def rows(rng: np.random.Generator, n: int, n_features: int) -> np.ndarray:
    x = rng.integers(-5, 6, size=(n, n_features)) / 2 + rng.choice([0.0, 1e-40, 0.25], size=(n, n_features))
    x[rng.random((n, n_features)) < 0.03] = np.nan
    return x


@pytest.mark.parametrize("max_leaves", [1, 8, 64, 90])
@pytest.mark.parametrize("zero_rule", [True, False])
def test_masks_equal_the_walk(max_leaves, zero_rule):
    rng = np.random.default_rng(max_leaves + 100 * zero_rule)
    model = random_trees(rng, 40, max_leaves, 6)
    if not zero_rule:
        model["missing"][model["missing"] == 1] = 0
    x = rows(rng, 500, 7)
    expected = gbm.gbm_probabilities(*gbm.gbm_arrays(model), x)
    np.testing.assert_array_equal(gbm.score_rows(*gbm.gbm_arrays(model), x), expected)


def test_masks_equal_the_walk_on_a_trained_model():
    pytest.importorskip("lightgbm")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 5))
    y = (x[:, 0] - x[:, 2] + rng.normal(size=2000) > 0).astype(np.int64)
    model = gbm.export_gbm(gbm.train_gbm(x, y, seed=2, rounds=50))
    test = np.round(rng.normal(size=(700, 5)), 1)
    test[::31, 1] = np.nan
    expected = gbm.gbm_probabilities(*gbm.gbm_arrays(model), test)
    np.testing.assert_array_equal(gbm.predict_gbm(model, test), expected)
