"""The fee of one fill, in one place for the simulator (compiled) and for Python (Instrument.fee).

Two curves: ``notional`` (crypto, equities): rate x traded value. ``probability`` (prediction
markets): rate x shares x (p (1 - p))^exponent, p the price as a probability, which is Polymarket's
platform fee (docs.polymarket.com/trading/fees, exponent 1, 5 decimals) and Kalshi's
(kalshi.com/docs/kalshi-fee-schedule.pdf: 0.07 takers, 0.0175 makers where charged, rounded up to
the cent). A fee is then charged in whole steps of ``step`` when it is positive."""

from __future__ import annotations

import math

import numba as nb


@nb.njit(cache=True)
def fee_of(rate, notional, shares, probability_curve, p, exponent, step, round_up):
    """The fee of a fill worth ``notional`` (``shares`` at probability ``p`` on the probability curve)."""
    fee = rate * shares * (p * (1.0 - p)) ** exponent if probability_curve else rate * notional
    if step > 0:
        units = fee / step
        # a fee a hair over a whole step by float error is that step, not the next
        fee = (math.ceil(units - 1e-9) if round_up else math.floor(units + 0.5)) * step
    return fee
