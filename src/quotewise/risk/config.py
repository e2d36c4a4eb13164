"""Risk limits: one pydantic model, filled from `mm backtest` flags now and from YAML later.

Every limit is optional; ``None`` means the rule is off. Units are those of the instrument and its
settlement currency (the currency its P&L is in: USDT for spot and USD-M BTCUSDT, the coin for
inverse contracts such as COIN-M BTCUSD_PERP), so a config reads the same on any venue: positions
and order sizes in instrument units, notional, losses and drawdown in the settlement currency,
durations as :data:`~quotewise.parsing.Duration` (``"5s"``, ``"2m"``, ``"1h"``; held in nanoseconds),
the price band as a fraction of fair value (``"5%"``, ``"50bp"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quotewise.errors import ConfigError, one_line
from quotewise.parsing import Duration, Windows, parse_fee, setting


def parse_band(text: str | float, what: str = "price_band") -> float:
    """``"5%"``, ``"50bp"`` or ``0.05`` -> a fraction of fair value."""
    try:
        return parse_fee(text, what)
    except ConfigError as exc:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 5%, 50bp or 0.05") from exc


Band = Annotated[float, setting(parse_band)]  # a fraction of fair value: 5%, 50bp or 0.05


class RiskConfig(BaseModel):
    """The limits the risk engine enforces (see docs/risk.md for each rule)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    max_pos: float | None = Field(None, gt=0, description="largest |position|, instrument units")
    max_notional: float | None = Field(
        None, gt=0, description="largest |position| x fair value, settlement currency"
    )
    max_at_risk: float | None = Field(
        None,
        gt=0,
        description="prediction markets: largest worst-case loss of the position at settlement (a long "
        "loses its fair value per share if it pays 0, a short 1 - fair if it pays 1), settlement currency",
    )
    max_order_size: float | None = Field(
        None, gt=0, description="largest single order, instrument units (fat finger)"
    )
    max_order_notional: float | None = Field(
        None, gt=0, description="largest single order's value (notional), settlement currency"
    )
    max_loss: float | None = Field(
        None,
        gt=0,
        description="loss that halts trading, settlement currency; with max_loss_window it pauses instead",
    )
    max_loss_window: Duration | None = Field(
        None, gt=0, description="rolling window of max_loss (e.g. 5m, 1h): a loss this large within it pauses"
    )
    max_daily_loss: float | None = Field(
        None, gt=0, description="loss since the start of the UTC day that pauses until the next day"
    )
    max_drawdown: float | None = Field(
        None, gt=0, description="fall from the P&L peak that halts trading, settlement currency"
    )
    max_order_rate: float | None = Field(
        None, ge=1, description="orders plus cancels sent in any rolling second"
    )
    stale_after: Duration | None = Field(
        None, gt=0, description="no market event for this long (e.g. 5s) cancels quotes until data flows"
    )
    pause_windows: Windows | None = Field(
        None,
        description="scheduled pauses, no quoting: START/DURATION (START ISO UTC or epoch ns), several "
        "comma-separated, e.g. 2024-08-08T13:30:00/5m",
    )
    reduce_windows: Windows | None = Field(
        None,
        description="scheduled reduce-only periods: only the side that reduces the position quotes "
        "(none when flat); START/DURATION, several comma-separated",
    )
    pause_for: Duration = Field("60s", gt=0, description="cooling period after a window loss")
    price_band: Band | None = Field(
        None, gt=0, description="largest distance of an order from fair value, fraction of it"
    )
    reduce_only_at: float = Field(
        0.8, gt=0, le=1, description="share of the position limit from which only the reducing side quotes"
    )

    @field_validator("max_loss_window")
    @classmethod
    def _window_needs_loss(cls, value: int | None, info: Any) -> int | None:
        if value is not None and info.data.get("max_loss") is None:
            raise ValueError("a loss window needs max_loss, the loss allowed within it")
        return value


LIMITS = tuple(name for name in RiskConfig.model_fields if name not in ("pause_for", "reduce_only_at"))


def risk_config(values: Mapping[str, Any] | None, name: Callable[[str], str] = str) -> RiskConfig | None:
    """The risk limits in ``values`` (None entries: not given), validated; None when no limit is set
    (no risk engine). The one validation of risk settings for the CLI, the API and config changes:
    every bad value is named in one ConfigError line, by ``name(field)`` (the CLI names its flags)."""
    given = {k: v for k, v in (values or {}).items() if v is not None}
    if not any(k in LIMITS for k in given):
        return None
    try:
        return RiskConfig(**given)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, name)) from None
