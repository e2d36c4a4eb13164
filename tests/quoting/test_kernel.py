"""Which strategies the compiled rule may run is derived from the parameter model: every parameter is
implemented, inert, or sends the strategy to Python when it is not at its default."""

from __future__ import annotations

import pytest
from pydantic import Field

from quotewise.model.instrument import Instrument
from quotewise.quoting.kernel import IMPLEMENTED, INERT, compiled_quoting
from quotewise.quoting.loader import make_strategy
from quotewise.quoting.named import SkewParams, SkewStrategy

INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)

# a value other than the default for every parameter the kernel does not implement: each must keep a
# strategy off the compiled rule. A new parameter fails test_every_parameter_is_classified until it
# is added here (the kernel does not know it), to IMPLEMENTED or to INERT.
NOT_DEFAULT = {
    "fv_method": "weighted_mid",
    "min_spread": "1tick",
    "max_spread": "5ticks",
    "threshold": "2ticks",
    "max_orders": 2,
    "flatten_band": 1.5,
    "book_skew": 0.5,
    "flow_skew": 0.5,
    "ofi_skew": 0.5,
    "markout_widen": 0.5,
    "markout_pause": "2ticks",
    "vol_mult": 0.5,
    "skew_band": 0.5,
}


def test_every_parameter_is_classified():
    fields = set(SkewParams.model_fields)
    assert fields == IMPLEMENTED | INERT | set(NOT_DEFAULT), (
        f"unclassified: {sorted(fields - IMPLEMENTED - INERT - set(NOT_DEFAULT))}"
    )
    assert not (IMPLEMENTED & INERT) and not (set(NOT_DEFAULT) & (IMPLEMENTED | INERT))


@pytest.mark.parametrize(("name", "value"), sorted(NOT_DEFAULT.items()))
def test_a_parameter_the_kernel_does_not_implement_sends_the_strategy_to_python(name, value):
    strat = make_strategy("skew", {name: value})
    strat.on_start(INST)
    assert compiled_quoting(strat) is None
    plain = make_strategy("skew", {})
    plain.on_start(INST)
    assert compiled_quoting(plain) is not None


def test_a_new_parameter_is_never_silently_ignored():
    """A parameter added to the model and not taught to the kernel: a value other than its default
    runs the strategy in Python (the rule is derived from the model, not a hand-kept list)."""

    class NewParams(SkewParams):
        widen_on_news: float = Field(0.0, description="a parameter the kernel knows nothing of")

    def with_params(**values: object) -> SkewStrategy:
        strat = SkewStrategy()
        strat.params = NewParams(**values)
        strat.on_start(INST)
        return strat

    assert compiled_quoting(with_params(widen_on_news=1.0)) is None
    assert compiled_quoting(with_params()) is not None
