"""How good a probability of "the next mid move is up" is: AUC, accuracy, confident precision, calibration.

Definitions (docs/intelligence.md): ``y`` is 1 for an up move and 0 for a down move, ``p`` the predicted
probability of up. A prediction is *confident at c* (c = 0.7) when ``p > c`` or ``p < 1 - c``; its
call is up when ``p > 0.5``. ``coverage_at_c`` is the share of samples that are confident and
``precision_at_c`` the share of confident calls that are right (None when there are none).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties given half credit;
    None when one class is absent."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(p, kind="mergesort")
    sorted_p = np.asarray(p)[order]
    ranks = np.empty(len(p), np.float64)
    # average ranks over ties
    _, start, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    mean_rank = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width bins of predicted probability: mean prediction, observed up share and count of each
    non-empty bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        if n:
            out.append(
                {
                    "bin": [round(float(edges[b]), 2), round(float(edges[b + 1]), 2)],
                    "predicted": float(p[sel].mean()),
                    "observed": float(y[sel].mean()),
                    "n": n,
                }
            )
    return out


def score(y: np.ndarray, p: np.ndarray, confidence: float = 0.7) -> dict[str, Any]:
    """Every metric of one model on labelled samples (``y`` in {0, 1})."""
    y = np.asarray(y).astype(np.int64)
    p = np.asarray(p, np.float64)
    call = (p > 0.5).astype(np.int64)
    confident = (p > confidence) | (p < 1.0 - confidence)
    n_conf = int(confident.sum())
    key = f"{confidence:g}"
    return {
        "n": len(y),
        "auc": auc(y, p),
        "accuracy": float((call == y).mean()) if len(y) else None,
        "up_share": float(y.mean()) if len(y) else None,
        f"precision_at_{key}": float((call[confident] == y[confident]).mean()) if n_conf else None,
        f"coverage_at_{key}": n_conf / len(y) if len(y) else None,
        "calibration": calibration(y, p),
    }
