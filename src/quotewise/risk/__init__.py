"""Risk limits and actions between the quoting layer and the order manager (see docs/risk.md)."""

from quotewise.risk.config import RiskConfig
from quotewise.risk.engine import ACTIONS, MarketState, RiskEngine, RiskEvent, events_table

__all__ = ["ACTIONS", "MarketState", "RiskConfig", "RiskEngine", "RiskEvent", "events_table"]
