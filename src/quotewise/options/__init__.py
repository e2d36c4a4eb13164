"""European options: Black-Scholes and Black-76 prices and greeks, implied volatility, an SVI smile,
an option market maker and the delta-hedging model world behind ``mm sim options`` (docs/options.md)."""

from quotewise.options.expiry import parse_expiry
from quotewise.options.pricing import Greeks, black76, black_scholes, implied_vol, price_bounds
from quotewise.options.smile import Smile, SVIParams, fit_smile, fit_svi

__all__ = [
    "Greeks",
    "SVIParams",
    "Smile",
    "black76",
    "black_scholes",
    "fit_smile",
    "fit_svi",
    "implied_vol",
    "parse_expiry",
    "price_bounds",
]
