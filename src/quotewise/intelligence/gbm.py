"""Gradient-boosted trees (LightGBM) for the next mid move, exported to flat arrays and evaluated in numba.

Training needs ``lightgbm``; prediction does not: :func:`export_gbm` flattens the booster's trees into
arrays (one row per node) and :func:`predict_gbm` walks them, so the compiled backtest can score a
feature row per event. A node is a leaf when ``feature < 0``; otherwise the walk goes ``left`` when
``x[feature] <= threshold`` (LightGBM's numerical split). Missing values follow LightGBM's rule: with the
node's ``missing`` = 2 (NaN) a NaN goes the ``default_left`` way, with 1 (zero) a zero does; otherwise a
NaN is read as 0.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from quotewise.errors import ConfigError

GBM_KEYS = ("feature", "threshold", "left", "right", "value", "default_left", "missing", "roots")
MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


def train_gbm(x: np.ndarray, y: np.ndarray, seed: int = 0, rounds: int = 200) -> Any:
    """A LightGBM binary classifier of ``y`` (1 = up) on ``x``; small trees, strong regularisation,
    since a day of data gives thousands of samples at most."""
    try:
        import lightgbm as lgb
    except ImportError:  # pragma: no cover - lightgbm is a dependency
        raise ConfigError("training the GBM needs lightgbm: pip install 'lightgbm>=4.0'") from None
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 8,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    data = lgb.Dataset(x, label=y.astype(np.float64), free_raw_data=False)
    return lgb.train(params, data, num_boost_round=rounds)


def _walk(node: dict, out: dict[str, list], categorical: list[str]) -> int:
    """Append ``node`` and its subtree to the flat lists; returns its index."""
    index = len(out["feature"])
    for key in out:
        out[key].append(0)
    if "leaf_value" in node or "split_index" not in node:
        out["feature"][index] = -1
        out["value"][index] = float(node.get("leaf_value", 0.0))
        return index
    if node.get("decision_type", "<=") != "<=":
        categorical.append(str(node.get("decision_type")))
        return index
    out["feature"][index] = int(node["split_feature"])
    out["threshold"][index] = float(node["threshold"])
    out["default_left"][index] = 1 if node.get("default_left", True) else 0
    out["missing"][index] = MISSING_TYPES.get(str(node.get("missing_type", "None")), 0)
    out["left"][index] = _walk(node["left_child"], out, categorical)
    out["right"][index] = _walk(node["right_child"], out, categorical)
    return index


def export_gbm(booster: Any) -> dict[str, np.ndarray]:
    """The booster as flat numpy arrays (see the module doc); ``roots`` indexes each tree's root."""
    model = booster.dump_model()
    if model.get("num_class", 1) != 1:
        raise ConfigError("only a binary GBM can be exported")
    out: dict[str, list] = {
        k: [] for k in ("feature", "threshold", "left", "right", "value", "default_left", "missing")
    }
    categorical: list[str] = []
    roots = [_walk(tree["tree_structure"], out, categorical) for tree in model["tree_info"]]
    if categorical:
        raise ConfigError(f"the GBM has non-numerical splits ({categorical[0]}): cannot export it")
    return {
        "feature": np.asarray(out["feature"], np.int64),
        "threshold": np.asarray(out["threshold"], np.float64),
        "left": np.asarray(out["left"], np.int64),
        "right": np.asarray(out["right"], np.int64),
        "value": np.asarray(out["value"], np.float64),
        "default_left": np.asarray(out["default_left"], np.int64),
        "missing": np.asarray(out["missing"], np.int64),
        "roots": np.asarray(roots, np.int64),
    }


@nb.njit(cache=True)
def gbm_raw_score(feature, threshold, left, right, value, default_left, missing, roots, row):
    """Sum of the trees' leaf values for one feature row (the log-odds of an up move)."""
    total = 0.0
    for r in range(roots.shape[0]):
        i = roots[r]
        while feature[i] >= 0:
            v = row[feature[i]]
            if np.isnan(v) and missing[i] != 2:
                v = 0.0
            if (missing[i] == 2 and np.isnan(v)) or (missing[i] == 1 and abs(v) <= ZERO_THRESHOLD):
                go_left = default_left[i] == 1
            else:
                go_left = v <= threshold[i]
            i = left[i] if go_left else right[i]
        total += value[i]
    return total


@nb.njit(cache=True)
def gbm_probability(feature, threshold, left, right, value, default_left, missing, roots, row):
    """Probability that the next mid move is up, for one feature row."""
    return 1.0 / (
        1.0
        + np.exp(-gbm_raw_score(feature, threshold, left, right, value, default_left, missing, roots, row))
    )


@nb.njit(cache=True)
def gbm_probabilities(feature, threshold, left, right, value, default_left, missing, roots, x):
    """:func:`gbm_probability` of every row of ``x``."""
    out = np.empty(x.shape[0], np.float64)
    for k in range(x.shape[0]):
        out[k] = gbm_probability(feature, threshold, left, right, value, default_left, missing, roots, x[k])
    return out


def gbm_arrays(model: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The exported arrays in the order the numba functions take them."""
    return tuple(model[k] for k in GBM_KEYS)


def predict_gbm(model: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray | float:
    """Probability of an up move for one feature row (a float) or a matrix of rows (an array)."""
    x = np.asarray(features, np.float64)
    if x.ndim == 1:
        return float(gbm_probability(*gbm_arrays(model), x))
    return gbm_probabilities(*gbm_arrays(model), np.ascontiguousarray(x))
