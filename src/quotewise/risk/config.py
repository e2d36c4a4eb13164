"""Risk limits: one pydantic model, filled from `mm backtest` flags now and from YAML later.

Every limit is optional; ``None`` means the rule is off. Units are those of the instrument and its
settlement currency (the currency its P&L is in: USDT for spot and USD-M BTCUSDT, the coin for
inverse contracts such as COIN-M BTCUSD_PERP), so a config reads the same on any venue: positions
and order sizes in instrument units, notional, losses and drawdown in the settlement currency,
durations in nanoseconds (text such as ``"5s"`` or ``"2m"`` is accepted), the price band as a
fraction of fair value (``"5%"``, ``"50bp"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quotewise.errors import ConfigError, one_line
from quotewise.parsing import parse_duration, parse_fee

DURATION_FIELDS = ("max_loss_window", "stale_after", "pause_for")


def parse_band(text: str | float, what: str = "price_band") -> float:
    """``"5%"``, ``"50bp"`` or ``0.05`` -> a fraction of fair value."""
    try:
        return parse_fee(text, what)
    except ConfigError as exc:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 5%, 50bp or 0.05") from exc


class RiskConfig(BaseModel):
    """The limits the risk engine enforces (see docs/risk.md for each rule)."""

    model_config = ConfigDict(extra="forbid")

    max_pos: float | None = Field(None, gt=0, description="largest |position|, instrument units")
    max_notional: float | None = Field(
        None, gt=0, description="largest |position| x fair value, settlement currency"
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
    max_loss_window: int | None = Field(
        None, gt=0, description="rolling window of max_loss, ns: a loss this large within it pauses"
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
    stale_after: int | None = Field(
        None, gt=0, description="no market event for this long (ns) cancels quotes until data flows"
    )
    pause_for: int = Field(60_000_000_000, gt=0, description="cooling period after a window loss, ns")
    price_band: float | None = Field(
        None, gt=0, description="largest distance of an order from fair value, fraction of it"
    )
    reduce_only_at: float = Field(
        0.8, gt=0, le=1, description="share of the position limit from which only the reducing side quotes"
    )

    @field_validator(*DURATION_FIELDS, mode="before")
    @classmethod
    def _duration(cls, value: Any, info: Any) -> Any:
        if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
            return value
        return _as_value_error(parse_duration, value, info.field_name)

    @field_validator("price_band", mode="before")
    @classmethod
    def _fraction(cls, value: Any, info: Any) -> Any:
        return _as_value_error(parse_band, value, info.field_name) if isinstance(value, str) else value

    @field_validator("max_loss_window")
    @classmethod
    def _window_needs_loss(cls, value: int | None, info: Any) -> int | None:
        if value is not None and info.data.get("max_loss") is None:
            raise ValueError("a loss window needs max_loss, the loss allowed within it")
        return value


def _as_value_error(parse: Callable[[Any, str], Any], value: Any, field: str) -> Any:
    """Run a parser inside a validator: its ConfigError becomes the ValueError pydantic reports under
    the field's name (without the name the parser put in front)."""
    try:
        return parse(value, field)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix(f"{field}: ")) from None


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
