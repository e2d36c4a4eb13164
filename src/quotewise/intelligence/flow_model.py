"""Train, save, load and evaluate the next-mid-move models on market data (what `mm model` runs).

A model directory holds ``model.json`` (features, sampling and horizon, the training data and its time
range, each model's file) and one ``.npz`` per model: ``gbm.npz`` (:mod:`.gbm`'s flat trees) and
``seq.npz`` (:mod:`.seq`'s LSTM weights with the standardisation). Loading needs neither lightgbm nor
torch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quotewise.errors import ConfigError, DataError
from quotewise.intelligence import gbm, seq
from quotewise.intelligence.features import FEATURES, FeatureConfig, Samples, compute_samples
from quotewise.intelligence.metrics import score
from quotewise.model.events import EventSource

MODELS = ("gbm", "seq")
MODEL_CHOICES = (*MODELS, "all")
FORMAT = "quotewise-flow-model"
VERSION = 1
MAX_SEQ_TRAIN = 50_000  # windows; beyond this the sequence model trains on an even subsample

Progress = Callable[[int], None]


@dataclass
class Dataset:
    """Samples of one ``--data`` value, with the sample-time range that training or evaluation uses."""

    data: str
    files: list[str]
    samples: Samples
    in_range: np.ndarray  # bool per sample: inside [start, end)

    @property
    def labelled(self) -> np.ndarray:
        """Indices of labelled samples inside the range."""
        return np.flatnonzero(self.samples.labelled & self.in_range)

    def seq_ends(self) -> np.ndarray:
        """Labelled samples in range that have a full window of history."""
        index = self.labelled
        return index[seq.full_history(index)]

    def y(self, index: np.ndarray) -> np.ndarray:
        return (self.samples.label[index] > 0).astype(np.int64)


def load_dataset(
    source: EventSource,
    files: list[str],
    config: FeatureConfig,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Progress | None = None,
    on_size: Callable[[int], None] | None = None,
) -> Dataset:
    """The samples of a loaded market (``files``: the files it was read from, for the overlap check)."""
    data = source.name
    if on_size is not None:
        on_size(source.n_events)
    samples = compute_samples(source.chunks(), source.price_lo, source.price_hi, config, progress)
    if samples.n_trades == 0:
        raise DataError(f"{data}: no trades in the data: the trade-flow features need trade prints")
    in_range = np.ones(len(samples.ts), bool)
    if start_ns is not None:
        in_range &= samples.ts >= start_ns
    if end_ns is not None:
        in_range &= samples.ts < end_ns
    dataset = Dataset(data, files, samples, in_range)
    if len(dataset.labelled) == 0:
        raise DataError(
            f"{data}: no labelled samples (no mid change within {config.horizon_ns / 1e9:g} s of any sample"
            + (" inside --start/--end" if start_ns is not None or end_ns is not None else "")
            + ")"
        )
    return dataset


def parse_models(model: str) -> tuple[str, ...]:
    if model not in MODEL_CHOICES:
        raise ConfigError(f"unknown model {model!r}: choose one of {', '.join(MODEL_CHOICES)}")
    return MODELS if model == "all" else (model,)


def check_models(model: str) -> tuple[str, ...]:
    """The models ``model`` names, once each can be trained here (the sequence model needs torch)."""
    which = parse_models(model)
    if "seq" in which:
        seq._torch()
    return which


def counts(dataset: Dataset) -> dict[str, int]:
    """Sample counts of a dataset in its range: all samples, labelled, and the two kinds excluded."""
    s = dataset.samples
    return {
        "events": s.n_events,
        "trades": s.n_trades,
        "samples": int(dataset.in_range.sum()),
        "labelled": len(dataset.labelled),
        "excluded_no_change": int(np.count_nonzero(s.no_change & dataset.in_range)),
        "excluded_censored": int(np.count_nonzero(s.censored & dataset.in_range)),
    }


def train(
    source: EventSource,
    files: list[str],
    out: Path,
    config: FeatureConfig,
    model: str = "all",
    seed: int = 0,
    epochs: int = 8,
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Progress | None = None,
    on_size: Callable[[int], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train the chosen models on ``source`` (time order kept) and save them in ``out``; returns the
    summary that ``model.json`` keeps."""
    which = check_models(model)
    began = time.perf_counter()
    dataset = load_dataset(source, files, config, start_ns, end_ns, progress, on_size)
    features_s = time.perf_counter() - began
    out.mkdir(parents=True, exist_ok=True)
    index = dataset.labelled
    x = dataset.samples.x
    summary: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "features": list(FEATURES),
        "config": config.to_dict(),
        "training": {
            "data": dataset.data,
            "files": dataset.files,
            "first_ts": int(dataset.samples.ts[index[0]]),
            "last_ts": int(dataset.samples.ts[index[-1]]),
            "seed": seed,
            **counts(dataset),
            "features_s": round(features_s, 3),
        },
        "models": {},
    }
    mean, std = seq.standardisation(x[dataset.in_range])
    summary["normalisation"] = {"mean": mean.tolist(), "std": std.tolist(), "clip": seq.CLIP}
    if "gbm" in which:
        t0 = time.perf_counter()
        booster = gbm.train_gbm(x[index], dataset.y(index), seed=seed)
        arrays = gbm.export_gbm(booster)
        np.savez(out / "gbm.npz", **arrays)
        summary["models"]["gbm"] = {
            "file": "gbm.npz",
            "trees": len(arrays["roots"]),
            "n_train": len(index),
            "train_s": round(time.perf_counter() - t0, 3),
        }
    if "seq" in which:
        t0 = time.perf_counter()
        ends = dataset.seq_ends()
        if len(ends) == 0:
            raise DataError(
                f"{dataset.data}: no labelled sample has {seq.WINDOW} samples of history for the "
                "sequence model"
            )
        if len(ends) > MAX_SEQ_TRAIN:
            ends = ends[np.linspace(0, len(ends) - 1, MAX_SEQ_TRAIN).astype(np.int64)]
        net, mean, std = seq.train_seq(x, ends, dataset.y(ends), seed=seed, epochs=epochs, on_epoch=on_epoch)
        np.savez(out / "seq.npz", **seq.export_seq(net, mean, std))
        summary["models"]["seq"] = {
            "file": "seq.npz",
            "window": seq.WINDOW,
            "hidden": seq.HIDDEN,
            "epochs": epochs,
            "n_train": len(ends),
            "train_s": round(time.perf_counter() - t0, 3),
        }
    summary["training"]["total_s"] = round(time.perf_counter() - began, 3)
    (out / "model.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def load_model(directory: Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """``model.json`` and each model's arrays from a directory written by :func:`train`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"model directory {directory} does not exist (write one with mm model train)")
    meta_path = directory / "model.json"
    if not meta_path.is_file():
        raise ConfigError(f"{directory} holds no model.json: not a model directory written by mm model train")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{meta_path}: not a {FORMAT} file")
    arrays = {}
    for name, info in meta["models"].items():
        path = directory / info["file"]
        if not path.is_file():
            raise ConfigError(f"{directory}: model {name}'s file {info['file']} is missing")
        with np.load(path) as npz:
            arrays[name] = {k: npz[k] for k in npz.files}
    return meta, arrays


def overlaps_training(meta: dict[str, Any], dataset: Dataset) -> bool:
    """True when the evaluation samples come from a training file and overlap the training time range."""
    training = meta["training"]
    if not set(training["files"]) & set(dataset.files):
        return False
    ts = dataset.samples.ts[dataset.labelled]
    return bool(ts.min() <= training["last_ts"] and ts.max() >= training["first_ts"])


def evaluate(
    directory: Path,
    source: EventSource,
    files: list[str],
    start_ns: int | None = None,
    end_ns: int | None = None,
    progress: Progress | None = None,
    on_size: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Each saved model's metrics on ``source``, and whether it overlaps the training data."""
    meta, arrays = load_model(directory)
    config = FeatureConfig(**meta["config"])
    dataset = load_dataset(source, files, config, start_ns, end_ns, progress, on_size)
    x = dataset.samples.x
    result: dict[str, Any] = {}
    for name, model in arrays.items():
        if name == "gbm":
            index = dataset.labelled
            p = gbm.predict_gbm(model, x[index])
        else:
            index = dataset.seq_ends()
            p = seq.predict_seq_many(model, x, index) if len(index) else np.zeros(0)
        result[name] = score(dataset.y(index), p)
    c = counts(dataset)
    for entry in result.values():
        entry["excluded_no_change"] = c["excluded_no_change"]
        entry["excluded_censored"] = c["excluded_censored"]
    return result, overlaps_training(meta, dataset)
