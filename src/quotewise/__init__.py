"""Quotewise: market making with a backtest you can trust and the same strategy live.

From Python (a notebook)::

    import quotewise as qw
    r = qw.backtest(data="synthetic", strategy="skew", events=200_000, spread=2)
    r.summary["total_pnl"], r.fills, r.report("out.html")
"""

import quotewise.backtest  # noqa: F401 - the subpackage first: imported later, it would take the name backtest
from quotewise.api import Backtest, backtest, build_strategy, load

__version__ = "0.1.0"
__all__ = ["Backtest", "__version__", "backtest", "build_strategy", "load"]
