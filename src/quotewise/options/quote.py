"""``mm quote --strategy option``: one option's price and greeks, or its implied vol from a price."""

from __future__ import annotations

from typing import Any

from quotewise.errors import ConfigError
from quotewise.options.expiry import parse_expiry
from quotewise.options.pricing import KINDS, MODELS, greeks, implied_vol

# the flags only --strategy option reads, by parameter name of `mm quote`
OPTION_FLAGS = {
    "spot": "--spot",
    "strike": "--strike",
    "expiry": "--expiry",
    "vol": "--vol",
    "rate": "--rate",
    "option_type": "--type",
    "price": "--price",
    "dividend": "--dividend",
    "model": "--model",
}


def option_quote(
    *,
    spot: float | None,
    strike: float | None,
    expiry: str | None,
    vol: float | None,
    rate: float | None = None,
    option_type: str | None = None,
    price: float | None = None,
    dividend: float | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Price and greeks at ``vol``; with ``price``, the implied vol and the greeks at it (``vol``, if
    also given, is then only the volatility the price is compared with: ``vol_given``).
    For ``model="black76"`` the ``spot`` is the forward."""
    missing = [
        flag
        for flag, value in (("--spot", spot), ("--strike", strike), ("--expiry", expiry))
        if value is None
    ]
    if vol is None and price is None:
        missing.append("--vol (or --price)")
    if missing:
        raise ConfigError(f"--strategy option needs {', '.join(missing)}")
    kind, model = option_type or "call", model or "bs"
    if kind not in KINDS:
        raise ConfigError(f"--type must be call or put, got {kind!r}")
    if model not in MODELS:
        raise ConfigError(f"--model must be bs or black76, got {model!r}")
    years = parse_expiry(expiry)
    r, q = rate or 0.0, dividend or 0.0
    given = vol
    if price is not None:
        vol = implied_vol(price, spot, strike, years, r, q, kind, model)
    g = greeks(model, spot, strike, years, vol, r, q, kind)
    out: dict[str, Any] = {
        "strategy": "option",
        "model": model,
        "type": kind,
        "forward" if model == "black76" else "spot": spot,
        "strike": strike,
        "expiry_years": years,
        "vol": vol,
        "rate": r,
        "dividend": q,
        **{name: float(value) for name, value in g.as_dict().items()},
    }
    if price is not None:
        out["implied_vol"] = vol
        if given is not None:
            out["vol_given"] = given
        out["model_price"] = out["price"]
        out["price"] = price
    return out
