"""The parameters of the built-in strategies (``--strategy``), the models every setting of theirs is
read and checked by: the flags of ``mm backtest``, ``mm start`` and ``mm config``, config files and
``qw.backtest`` all come from here (:mod:`quotewise.settings`).

Kept apart from the strategies themselves (:mod:`quotewise.quoting.named`), which need the compiled
signals, so that reading a command line does not load numba. Units are those of
:mod:`quotewise.parsing`: distances in ticks unless a unit says otherwise, durations in ms.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from quotewise.parsing import Distance, Duration, PriceDistance
from quotewise.quoting.base import StrategyParams

FvMethod = Literal["mid_price", "weighted_mid", "microprice", "vwap", "ema"]
VolMethod = Literal["ewma", "rolling"]


class QuoteParams(StrategyParams):
    """Parameters every named strategy shares (MISSION section 7 names where one exists)."""

    fv_method: FvMethod = Field("mid_price", description="mid_price|weighted_mid|microprice|vwap|ema")
    alpha: float = Field(
        0.2, gt=0, le=1, description="EMA smoothing weight of the newest mid (fv_method=ema)"
    )
    min_spread: Distance | None = Field(None, description="smallest distance from fair value to a quote")
    max_spread: Distance | None = Field(None, description="largest distance from fair value to a quote")
    vol_method: VolMethod = Field("ewma", description="volatility estimator: ewma or rolling")
    vol_window: Duration = Field("30s", description="rolling window, or EWMA half-life, of the volatility")
    threshold: Distance = Field("0", description="move a quote only when its price should move this much")
    max_orders: int = Field(1, ge=1, description="quotes (levels) per side")
    improve: bool = Field(
        True, description="let quotes sit inside the spread (false: never better than the touch)"
    )
    level_spacing: Distance = Field("1tick", description="distance between ladder levels")
    level_decay: float = Field(1.0, gt=0, description="size of level i is size x level_decay^i")
    max_inventory: float | None = Field(
        None, gt=0, description="position (units) at which the adding side stops (default per strategy)"
    )
    flatten_band: float | None = Field(
        None,
        ge=1,
        description="beyond this multiple of max_inventory, only the reducing side, at the touch or better",
    )
    book_skew: float = Field(
        0.0, description="fair-value shift per unit book imbalance, in half market spreads"
    )
    flow_skew: float = Field(0.0, description="shift per unit trade-flow imbalance, in half market spreads")
    ofi_skew: float = Field(0.0, description="shift as a multiple of the CKS impact OFI / (2 depth), ticks")
    flow_window: Duration = Field("5s", description="window of trade flow, OFI and the VWAP fair value")
    pressure_mode: Literal["shift", "widen"] = Field(
        "shift", description="pressure moves the fair value, or widens only the threatened side"
    )
    markout_horizon: Duration = Field("1s", description="horizon of the markouts of our fills")
    markout_widen: float = Field(0.0, ge=0, description="widen a side by this times its adverse markout")
    markout_pause: Distance | None = Field(
        None, description="pause a side whose mean markout reaches minus this distance"
    )
    markout_pause_for: Duration = Field("5s", description="how long a side pauses")

    @field_validator("min_spread", "max_spread", "level_spacing", "markout_pause")
    @classmethod
    def _positive_distance(cls, value: PriceDistance | None) -> PriceDistance | None:
        """These distances are positive; ``threshold`` may be 0 (move a quote on any change)."""
        if value is not None and value.amount <= 0:
            raise ValueError(f"must be > 0, got {value}")
        return value

    @field_validator("vol_window", "flow_window", "markout_horizon", "markout_pause_for")
    @classmethod
    def _positive_duration(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value


class SpreadParams(QuoteParams):
    spread: Distance = Field(
        "1tick", description="distance from fair value to each quote: 2 (ticks), 5bp, 0.1% or 0.05px"
    )
    vol_mult: float = Field(
        0.0, ge=0, description="add vol_mult x sigma (price per sqrt second) to the spread"
    )
    skew: float = Field(
        0.0, ge=0, description="centre shift against the position at max_inventory, in half-spreads"
    )
    skew_band: float | None = Field(
        None, gt=0, description="from this fraction of max_inventory on, skew harder (x skew_band_factor)"
    )
    skew_band_factor: float = Field(2.0, ge=1, description="skew multiplier in the skew band")

    @model_validator(mode="after")
    def _zero_spread(self) -> SpreadParams:
        """A zero base spread quotes at fair value: meaningful only when something else sets the
        width (``vol_mult`` or ``min_spread``); otherwise it is a typo that would cross the spread."""
        widened = self.vol_mult > 0 or self.min_spread is not None
        if self.spread.amount == 0 and not widened:
            raise ValueError("spread 0 needs vol_mult > 0 or a min_spread to set the width")
        return self


class SkewParams(SpreadParams):
    skew: float = Field(
        1.0, ge=0, description="centre shift against the position at max_inventory, in half-spreads"
    )
    max_inventory: float | None = Field(
        None,
        gt=0,
        description="position (instrument units) at which the adding side stops; default 10 x size",
    )
    model: str | None = Field(
        None, description="an mm model train directory: its GBM's P(next mid move up) leans the quotes"
    )
    model_skew: float = Field(
        1.0, ge=0, description="centre shift toward a certain prediction, in half-spreads (x (2 P(up) - 1))"
    )
    lead: str | None = Field(
        None,
        description="data of a leading instrument (the USD-M perpetual for spot): the compiled rule "
        "centres on its mid plus the basis (an average of our mid - its mid) instead of our mid",
    )
    lead_halflife: Duration = Field(
        "60s", gt=0, description="half-life of the basis average of lead (e.g. 30s, 5m)"
    )

    @model_validator(mode="after")
    def _one_signal(self) -> SkewParams:
        if self.model is not None and self.lead is not None:
            raise ValueError("model and lead both move the centre: give one of them")
        return self


class LadderParams(SkewParams):
    max_orders: int = Field(5, ge=1, description="quotes (levels) per side")
    level_decay: float = Field(0.8, gt=0, description="size of level i is size * level_decay^i")


def parse_clock(value: str) -> int:
    """``HH:MM`` or ``HH:MM:SS`` (UTC) as nanoseconds after midnight."""
    parts = value.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        h, m, s = (int(p) for p in [*parts, "0"][:3])
        if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
            raise ValueError
    except ValueError:
        raise ValueError(f"a time of day is HH:MM or HH:MM:SS (UTC), got {value!r}") from None
    return ((h * 60 + m) * 60 + s) * 1_000_000_000


class AdaptiveParams(SkewParams):
    confidence: float = Field(0.65, gt=0.5, lt=1, description="adaptive: act on predictions this sure")
    direction_widen: Distance = Field("2tick", description="adaptive: widen the side a prediction runs over")
    direction_pause: float | None = Field(
        0.8, gt=0.5, le=1, description="adaptive: pull that side from this probability"
    )
    direction_tighten: Distance = Field("0", description="adaptive: tighten the side a prediction favours")
    sweep_pause: Duration = Field("500ms", ge=0, description="adaptive: pause the side a sweep hit (0: off)")
    outlier_widen: Distance = Field("1tick", description="adaptive: widen the side a size outlier hit")
    outlier_for: Duration = Field("1s", description="adaptive: for this long")
    vpin_bucket: float | None = Field(None, gt=0, description="adaptive: VPIN bucket (units), none: off")
    vpin_threshold: float = Field(0.2, gt=0, le=1, description="adaptive: VPIN that widens and shrinks")
    depth_share: float | None = Field(
        None, gt=0, description="adaptive: order size as this share of the touch queue (within 1/4x-4x size)"
    )
    vol_ref: float | None = Field(
        None, gt=0, description="adaptive: shrink limits and size by vol_ref / sigma above it (price/sqrt s)"
    )
    loss_streak: int | None = Field(3, ge=1, description="adaptive: halve limits after N adverse fills")
    session_end: str | None = Field(None, description="adaptive: HH:MM UTC session end to flatten before")
    flatten_before: Duration = Field("60s", description="adaptive: quote only the reducing side this long")
    adaptive: bool = Field(True, description="adaptive: false = the plain skew quotes (a baseline)")

    @field_validator("session_end")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value


class ModelParams(QuoteParams):
    gamma: float = Field(0.1, gt=0, description="risk aversion, per (price x order size)")
    k: float | None = Field(None, gt=0, description="intensity decay per unit of price (default: fitted)")
    sigma: float | None = Field(
        None, ge=0, description="volatility, price per sqrt second (default: estimated)"
    )
    max_inventory: float | None = Field(
        None,
        gt=0,
        description="position (instrument units) at which the adding side stops; default 10 x size",
    )
    fit_window: Duration = Field("5m", description="half-life of the online fill-intensity fit")

    @field_validator("fit_window")
    @classmethod
    def _fit_window(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value


class ASParams(ModelParams):
    horizon: Literal["inf"] | Duration = Field(
        "60s", description="T - t as a duration, held constant (a rolling horizon), or 'inf'"
    )

    @field_validator("horizon", mode="before")
    @classmethod
    def _inf(cls, value: object) -> object:
        """YAML's ``.inf`` is the infinite horizon too."""
        return "inf" if isinstance(value, float) and math.isinf(value) and value > 0 else value

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, value: str | int) -> str | int:
        if value != "inf" and int(value) <= 0:
            raise ValueError("must be 'inf' or a positive duration such as 60s")
        return value


class GLFTParams(ModelParams):
    A: float | None = Field(
        None, gt=0, description="market orders per second at zero depth (default: fitted)"
    )
    xi: float | None = Field(None, ge=0, description="GLFT xi: gamma (model A, default) or 0 (model B)")


# the built-in strategies' parameters by the name --strategy takes (named.NAMED has the strategies;
# tests/quoting/test_named.py checks that both agree)
BUILTIN_PARAMS: dict[str, type[QuoteParams]] = {
    "symmetric": SpreadParams,
    "skew": SkewParams,
    "ladder": LadderParams,
    "avellaneda-stoikov": ASParams,
    "glft": GLFTParams,
    "adaptive": AdaptiveParams,
}
