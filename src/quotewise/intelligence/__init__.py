"""Short-horizon prediction from order flow: features and labels, a GBM and a sequence model.

Entry points for a strategy (none needs lightgbm or torch):

- :func:`quotewise.intelligence.features.flow_pass`: the streaming numba feature pass.
- :func:`quotewise.intelligence.gbm.predict_gbm` / ``gbm_probability`` (numba): P(next mid move up).
- :func:`quotewise.intelligence.seq.predict_seq` / ``seq_probability`` (numba): the same from a window.
- :func:`quotewise.intelligence.flow_model.load_model`: a model directory's metadata and arrays.

See docs/intelligence.md.
"""

from quotewise.intelligence.features import FEATURES, FeatureConfig, compute_samples
from quotewise.intelligence.flow_model import load_model
from quotewise.intelligence.gbm import predict_gbm
from quotewise.intelligence.seq import predict_seq

__all__ = ["FEATURES", "FeatureConfig", "compute_samples", "load_model", "predict_gbm", "predict_seq"]
