"""hedge.check: between fills the hedge re-values the book's exposure (a moving beta, an inverse
contract's value) and hedges what left the band; without it the hedge acts at fills only."""

from __future__ import annotations

import pytest
from test_portfolio_backtest import MS, T0, book_events, hedge_source, making_fills

from quotewise.errors import ConfigError
from quotewise.model.events import ASK, BID
from quotewise.model.instrument import Instrument
from quotewise.portfolio.config import parse_portfolio
from quotewise.portfolio.hedge import MakingLeg, run_hedge

DEEP = [(T0, ASK, 101, 50), (T0, ASK, 102, 50), (T0, BID, 99, 50), (T0, BID, 98, 50)]
BETA_JUMP = T0 + 500 * MS


def leg(ratio) -> MakingLeg:
    """Long 6 from one making fill at T0 + 10 ms."""
    return MakingLeg("m", Instrument(tick_size=1.0), making_fills([(T0 + 10 * MS, 1, 6)]), ratio)


def doubling_beta(t: int) -> float:
    return 1.0 if t < BETA_JUMP else 2.0


def hedge(ratio, check_ns: int | None) -> tuple:
    result = run_hedge(
        [leg(ratio)],
        hedge_source(book_events(DEEP)),
        0.5,
        MS,
        False,
        check_ns=check_ns,
        end_ns=T0 + 2_000 * MS,
    )
    return result, list(zip(result.fills["exch_ts"], result.fills["side"], result.fills["size"], strict=True))


def test_a_beta_that_doubles_between_fills_is_hedged_at_the_next_check_only_with_check_on():
    alone, fills_alone = hedge(doubling_beta, None)
    assert fills_alone == [(T0 + 11 * MS, -1, 6.0)]  # at the fill only: 6 units of beta 1
    assert alone.position == -6.0
    checked, fills = hedge(doubling_beta, 100 * MS)
    first_check_after = T0 + 510 * MS  # checks every 100 ms from the fill at T0 + 10 ms
    assert fills == [(T0 + 11 * MS, -1, 6.0), (first_check_after + MS, -1, 6.0)]
    assert checked.position == -12.0  # 6 long at beta 2
    # the table holds the fill's decision and the one check that sent an order
    assert checked.exposure["ts"].tolist() == [T0 + 10 * MS, first_check_after]
    assert checked.exposure["net"].tolist() == [6.0, 6.0]
    assert checked.exposure["net_after_hedge"].tolist() == [0.0, 0.0]


def test_checks_change_nothing_when_the_exposure_does_not_move():
    _, plain = hedge(lambda t: 1.0, None)
    _, checked = hedge(lambda t: 1.0, 100 * MS)
    assert plain == checked


@pytest.mark.parametrize("bad", ["0s", "-1s", "often"])
def test_a_check_that_is_not_a_positive_duration_is_refused_naming_the_field(bad: str):
    raw = {
        "instruments": {"a": {"data": "synthetic"}, "h": {"data": "synthetic", "role": "hedge"}},
        "hedge": {"instrument": "h", "band": 1, "check": bad},
    }
    with pytest.raises(ConfigError, match=r"hedge\.check"):
        parse_portfolio(raw)
