"""The fee of one fill, in one place for the simulator (compiled) and for Python (Instrument.fee).

Two curves: ``notional`` (crypto, equities): rate x traded value. ``probability`` (prediction
markets): rate x shares x (p (1 - p))^exponent, p the price as a probability, which is Polymarket's
platform fee (docs.polymarket.com/trading/fees, exponent 1, rounded down to 5 decimals) and
Kalshi's (kalshi.com/docs/kalshi-fee-schedule.pdf: 0.07 takers, 0.0175 makers where charged, rounded
up to the cent). A fee is then charged in whole steps of ``step``: ``rounding`` 1 up, -1 down, 0 to
the nearest."""

from __future__ import annotations

import math

import numba as nb

ROUNDING = {"nearest": 0, "up": 1, "down": -1}


@nb.njit(cache=True)
def fee_of(rate, notional, shares, probability_curve, p, exponent, step, rounding):
    """The fee of a fill worth ``notional`` (``shares`` at probability ``p`` on the probability curve)."""
    fee = rate * shares * (p * (1.0 - p)) ** exponent if probability_curve else rate * notional
    if step > 0:
        units = fee / step
        # a fee a hair off a whole step by float error is that step, not the next or the one before
        if rounding > 0:
            units = math.ceil(units - 1e-9)
        elif rounding < 0:
            units = math.floor(units + 1e-9)
        else:
            units = math.floor(units + 0.5)
        fee = units * step
    return fee
