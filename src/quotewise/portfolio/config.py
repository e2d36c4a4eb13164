"""The portfolio file (``mm backtest --portfolio FILE.yaml``): what each instrument runs, how the book
is hedged and which risk limits it watches. Every mistake is a ConfigError naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from quotewise.errors import ConfigError
from quotewise.parsing import parse_duration
from quotewise.settings import DEFAULT_STRATEGY

RatioMode = float | Literal["beta", "contract"]


class InstrumentSpec(BaseModel):
    """One instrument: its data, and either a making strategy (``role: make``) or none (``hedge``).
    Any other key is a backtest setting (latency, fees, queue, risk limits) as ``mm backtest`` names it."""

    model_config = ConfigDict(extra="allow")

    data: str
    role: Literal["make", "hedge"] = "make"
    strategy: str = DEFAULT_STRATEGY
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    events: int = Field(2_000_000, gt=0)
    format: str | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """The backtest settings: the strategy's params and the extra keys, as keyword arguments."""
        return {**self.params, **(self.model_extra or {})}


class HedgeSpec(BaseModel):
    """The hedge: which instrument, the band (hedge units), the ratio, the order latency, and whether
    orders take liquidity at once (``taker``) or rest up to ``timeout`` first (``passive``)."""

    model_config = ConfigDict(extra="forbid")

    instrument: str
    band: float = Field(ge=0)
    ratio: RatioMode = 1.0
    mode: Literal["taker", "passive"] = "taker"
    latency: str | int | float = "1ms"
    timeout: str | int | float = "2s"  # passive only: how long an order rests before it takes
    check: str | int | float | None = None  # also re-check the exposure this often between fills

    @property
    def latency_ns(self) -> int:
        return parse_duration(self.latency, "hedge.latency")

    @property
    def check_ns(self) -> int | None:
        """None: the hedge decides at making fills only; else also every ``check`` (a beta or an
        inverse contract's value moves the exposure between fills)."""
        if self.check is None:
            return None
        ns = parse_duration(self.check, "hedge.check")
        if ns <= 0:
            raise ConfigError(f"portfolio hedge.check: must be a positive duration, got {self.check!r}")
        return ns

    @property
    def timeout_ns(self) -> int:
        return parse_duration(self.timeout, "hedge.timeout")


class LimitsSpec(BaseModel):
    """Book limits (quote currency): net and gross exposure, 99% parametric 1-minute VaR; ``report``
    lists breaches, ``halt`` stops the whole book at the first one, ``pause`` (``reduce``) stops its
    quoting (lets only the side that reduces each position quote) for ``pause_for`` from each."""

    model_config = ConfigDict(extra="forbid")

    max_net: float | None = Field(None, gt=0)
    max_gross: float | None = Field(None, gt=0)
    var_1m: float | None = Field(None, gt=0)
    action: Literal["report", "halt", "pause", "reduce"] = "report"
    pause_for: str | int | float = "1m"  # pause, reduce: how long each window lasts

    @property
    def pause_for_ns(self) -> int:
        ns = parse_duration(self.pause_for, "limits.pause_for")
        if ns <= 0:
            raise ConfigError(
                f"portfolio limits.pause_for: must be a positive duration, got {self.pause_for!r}"
            )
        return ns


class PortfolioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instruments: dict[str, InstrumentSpec]
    hedge: HedgeSpec | None = None
    limits: LimitsSpec = Field(default_factory=LimitsSpec)

    @field_validator("instruments")
    @classmethod
    def _names(cls, value: dict[str, InstrumentSpec]) -> dict[str, InstrumentSpec]:
        if not value:
            raise ValueError("name at least one instrument")
        for name in value:
            if name in ("hedge", "") or "/" in name:
                raise ValueError(f"instrument name {name!r} is not a usable folder name")
        return value

    @model_validator(mode="after")
    def _hedge_known(self) -> PortfolioSpec:
        if not any(spec.role == "make" for spec in self.instruments.values()):
            raise ValueError("no instrument quotes: give at least one instrument role make")
        if self.hedge is not None and self.hedge.instrument not in self.instruments:
            raise ValueError(
                f"hedge.instrument {self.hedge.instrument!r} is not one of the instruments "
                f"{sorted(self.instruments)}"
            )
        hedge_only = [n for n, s in self.instruments.items() if s.role == "hedge"]
        if self.hedge is None and hedge_only:
            raise ValueError(f"{hedge_only} have role hedge but the file has no hedge: section")
        if self.hedge is not None and any(n != self.hedge.instrument for n in hedge_only):
            raise ValueError(f"only the hedge instrument may have role hedge, not {hedge_only}")
        return self


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def parse_portfolio(raw: Any, base_dir: Path | None = None) -> PortfolioSpec:
    """Validate a portfolio mapping; data paths are relative to ``base_dir`` when they exist there."""
    if not isinstance(raw, dict):
        raise ConfigError("a portfolio file holds a mapping with instruments:, hedge: and limits:")
    try:
        spec = PortfolioSpec.model_validate(raw)
        if spec.hedge is not None:
            spec.hedge.latency_ns  # noqa: B018 - a bad duration is refused before any run
            spec.hedge.timeout_ns  # noqa: B018
            spec.hedge.check_ns  # noqa: B018
        spec.limits.pause_for_ns  # noqa: B018
    except ValidationError as exc:
        first = exc.errors()[0]
        where = f" {_field(first['loc'])}" if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"portfolio{where}: {message}") from None
    if base_dir is not None:
        for inst in spec.instruments.values():
            local = base_dir / inst.data
            if not inst.data.startswith("synthetic") and not Path(inst.data).exists() and local.exists():
                inst.data = str(local)
    return spec


def load_portfolio(path: str | Path) -> PortfolioSpec:
    """Read and validate a portfolio YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--portfolio {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"--portfolio {path}: not valid YAML ({exc})") from None
    return parse_portfolio(raw, path.parent)
