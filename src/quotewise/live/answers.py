"""What the engine's API answers, as models: the OpenAPI description types every public answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Started(BaseModel):
    id: str = Field(description="the new maker's id")


class WorkerHealth(BaseModel):
    index: int
    pid: int | None
    alive: bool = Field(description="false: the worker exited; its makers resume at the next engine start")
    makers: int | None = None
    loop_busy: float | None = None
    loop_lag_ms: float | None = None
    loop_saturated: bool = False


class Health(BaseModel):
    ok: bool
    pid: int
    makers: int = Field(description="makers this engine process runs")
    db: str
    role: str = Field(description="the caller's role: viewer, trader or admin")
    loop_busy: float | None = Field(
        None, description="share of the last 10 s the engine's event loop computed (null before makers run)"
    )
    loop_lag_ms: float | None = Field(
        None, description="the latest a 1 s timer of the loop woke in the last 10 s"
    )
    loop_saturated: bool = Field(
        False, description="the loop is 80% busy or 20 ms late: quotes follow the market late"
    )
    workers: list[WorkerHealth] | None = Field(
        None,
        description="with --workers N: each worker process (its makers and loop); the loop_* fields above "
        "are then the busiest worker's",
    )


class MakerSummary(BaseModel):
    id: str
    venue: str
    market: str
    data: str = Field(description="the file replayed, or an exchange's endpoint ('' for its own hosts)")
    speed: float
    strategy: str
    status: str = Field(description="running, stopping, finishing, finished, stopped or failed")
    reason: str
    fills: int
    book: str | None = Field(None, description="the book it belongs to (mm start --book)")


class OpenOrder(BaseModel):
    order_id: int
    side: str = Field(description="bid or ask")
    price: float
    size: float
    status: str


class MakerStatus(MakerSummary):
    """A maker's status; a maker running in this engine adds its live state (quotes, book, risk)."""

    model_config = ConfigDict(extra="allow")

    position: float | None = Field(None, description="instrument units; negative: short")
    cash: float | None = None
    fees: float | None = None
    pnl: float | None = Field(None, description="cash plus the position marked at the mid")
    open_orders: list[OpenOrder] = Field(default_factory=list)
    halted: str | None = Field(None, description="null, 'halted' or 'flattening'")
    config: dict[str, Any] = Field(default_factory=dict)


class Performance(BaseModel):
    id: str
    market: str
    status: str
    currency: str
    pnl: float | None
    spread_capture: float
    inventory: float | None
    fees: float = Field(description="negative when paid")
    fills: int
    fills_without_mid: int
    volume: float
    position: float | None
    orders_placed: int | None
    cancels: int | None
    rejects: int | None
    fill_rate: float | None


class PerformanceReport(BaseModel):
    makers: list[Performance]
    total: dict[str, float] | None = Field(description="sums, when every maker settles in one currency")
    currencies: list[str]


class RiskAlert(BaseModel):
    id: int
    maker_id: str
    ts: int = Field(description="ns, the venue's clock")
    rule: str
    action: str
    value: float | None
    limit: float | None
    detail: str
