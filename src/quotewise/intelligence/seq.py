"""A small LSTM over the last ``WINDOW`` feature rows, trained with torch, run in numba.

Input: the window's feature rows, standardised with the training set's mean and standard deviation
and clipped to +-``CLIP``; one LSTM layer (Hochreiter & Schmidhuber 1997, gates in torch's order i, f,
g, o) from a zero state; the last hidden state goes through a linear layer to the log-odds of an up
move. Training needs ``torch`` (the ``ml`` extra); :func:`export_seq` turns the network into numpy
arrays and :func:`seq_probability` runs it without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

from quotewise.errors import ConfigError

WINDOW = 100
HIDDEN = 16
CLIP = 5.0
SEQ_KEYS = ("mean", "std", "w_ih", "w_hh", "bias", "w_out", "b_out")


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (1 where a feature is constant)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def windows(x: np.ndarray, ends: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """The ``window`` rows ending at each index of ``ends`` (each index >= window - 1): (m, window, F)."""
    view = np.lib.stride_tricks.sliding_window_view(x, (window, x.shape[1]))[:, 0]
    return view[ends - (window - 1)]


def full_history(index: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Which sample indices have ``window`` rows of history (themselves included)."""
    return index >= window - 1


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "the sequence model needs torch, an optional extra: pip install torch==2.13.0 then "
            "pip install -e '.[ml]' (or train with --model gbm)"
        ) from None
    return torch


def _network(torch: Any, n_features: int, hidden: int) -> Any:
    class FlowLSTM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(n_features, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, 1)

        def forward(self, x: Any) -> Any:
            out, _ = self.lstm(x)
            return self.head(out[:, -1, :]).squeeze(-1)

    return FlowLSTM()


def normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.clip((x - mean) / std, -CLIP, CLIP)


def train_seq(
    x: np.ndarray,
    ends: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    epochs: int = 8,
    hidden: int = HIDDEN,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Fit the LSTM to predict ``y`` (1 = up) from the windows of ``x`` ending at ``ends``.

    Returns the network and the standardisation (mean, std) computed on ``x``."""
    torch = _torch()
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(seed)
    mean, std = standardisation(x)
    z = normalise(x, mean, std).astype(np.float32)
    net = _network(torch, x.shape[1], hidden)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    target = torch.as_tensor(y.astype(np.float32))
    batch = 64
    for epoch in range(epochs):
        order = rng.permutation(len(ends))
        total = 0.0
        for start in range(0, len(order), batch):
            pick = order[start : start + batch]
            xb = torch.as_tensor(np.ascontiguousarray(windows(z, ends[pick])))
            optimiser.zero_grad()
            loss = loss_fn(net(xb), target[pick])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(pick)
        if on_epoch is not None:
            on_epoch(epoch + 1, total / max(len(order), 1))
    return net, mean, std


def export_seq(net: Any, mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    """The network as float64 numpy arrays (torch's LSTM biases summed)."""
    lstm, head = net.lstm, net.head

    def arr(t: Any) -> np.ndarray:
        return t.detach().cpu().double().numpy().copy()

    return {
        "mean": np.asarray(mean, np.float64),
        "std": np.asarray(std, np.float64),
        "w_ih": arr(lstm.weight_ih_l0),
        "w_hh": arr(lstm.weight_hh_l0),
        "bias": arr(lstm.bias_ih_l0) + arr(lstm.bias_hh_l0),
        "w_out": arr(head.weight)[0],
        "b_out": arr(head.bias),
    }


@nb.njit(cache=True, inline="always")
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


@nb.njit(cache=True)
def seq_logit(mean, std, w_ih, w_hh, bias, w_out, b_out, window):
    """Log-odds of an up move from a window of raw feature rows (oldest first)."""
    hidden = w_hh.shape[1]
    n_features = w_ih.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    z = np.empty(n_features)
    gates = np.empty(4 * hidden)
    for t in range(window.shape[0]):
        for f in range(n_features):
            z[f] = min(max((window[t, f] - mean[f]) / std[f], -CLIP), CLIP)
        for g in range(4 * hidden):
            acc = bias[g]
            for f in range(n_features):
                acc += w_ih[g, f] * z[f]
            for k in range(hidden):
                acc += w_hh[g, k] * h[k]
            gates[g] = acc
        for k in range(hidden):
            i = _sigmoid(gates[k])
            fg = _sigmoid(gates[hidden + k])
            g = np.tanh(gates[2 * hidden + k])
            o = _sigmoid(gates[3 * hidden + k])
            c[k] = fg * c[k] + i * g
            h[k] = o * np.tanh(c[k])
    out = b_out[0]
    for k in range(hidden):
        out += w_out[k] * h[k]
    return out


@nb.njit(cache=True)
def seq_probability(mean, std, w_ih, w_hh, bias, w_out, b_out, window):
    """Probability that the next mid move is up, from a window of raw feature rows."""
    return _sigmoid(seq_logit(mean, std, w_ih, w_hh, bias, w_out, b_out, window))


@nb.njit(cache=True)
def seq_probabilities(mean, std, w_ih, w_hh, bias, w_out, b_out, x, ends, window):
    """:func:`seq_probability` of the ``window`` rows of ``x`` ending at each index of ``ends``."""
    out = np.empty(ends.shape[0], np.float64)
    for k in range(ends.shape[0]):
        e = ends[k]
        out[k] = seq_probability(mean, std, w_ih, w_hh, bias, w_out, b_out, x[e - window + 1 : e + 1])
    return out


def seq_arrays(model: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The exported arrays in the order the numba functions take them."""
    return tuple(np.ascontiguousarray(model[k], np.float64) for k in SEQ_KEYS)


def predict_seq(model: dict[str, np.ndarray], window: np.ndarray) -> float:
    """Probability of an up move from the last ``WINDOW`` raw feature rows (oldest first)."""
    return float(seq_probability(*seq_arrays(model), np.ascontiguousarray(window, np.float64)))


def predict_seq_many(model: dict[str, np.ndarray], x: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """:func:`predict_seq` of the windows of ``x`` ending at each index of ``ends``."""
    x = np.ascontiguousarray(x, np.float64)
    return seq_probabilities(*seq_arrays(model), x, np.asarray(ends, np.int64), WINDOW)


def torch_probabilities(
    net: Any, mean: np.ndarray, std: np.ndarray, x: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """The torch network's own probabilities (float64), to check the export against."""
    torch = _torch()
    import copy

    twin = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        logits = twin(torch.as_tensor(windows(normalise(x, mean, std), ends)))
    return torch.sigmoid(logits).numpy()
