"""Every setting by name: strategy settings, risk limits and the simulated venue's settings, the one
list that the command line's flags, the notebook API and a live maker's config are all made from.

A setting is named once, in its model: the built-in strategies' parameter models
(:mod:`quotewise.quoting.params`), the risk model (:class:`~quotewise.risk.config.RiskConfig`) and
:class:`VenueSettings` here. A flat mapping of settings (``spread=2, max_pos=5, queue="prob"``)
splits into the three by name; no two models share a name (``tests/test_settings.py``). The strategy
and risk models are imported when first needed, so ``import quotewise`` stays quick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quotewise.errors import ConfigError, one_line
from quotewise.parsing import Duration, Fee

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from quotewise.model.instrument import Instrument
    from quotewise.sim.exchange import SimConfig

DEFAULT_STRATEGY = "skew"


def strategy_fields() -> dict[str, FieldInfo]:
    """The settings of the built-in strategies, each once, in the order the strategies declare them
    (the first strategy that has a setting gives its description)."""
    from quotewise.quoting.params import BUILTIN_PARAMS

    out: dict[str, FieldInfo] = {}
    for params in BUILTIN_PARAMS.values():
        for name, field in params.model_fields.items():
            out.setdefault(name, field)
    return out


def strategy_defaults(name: str) -> dict[str, str]:
    """``{strategy: default}`` of one setting, as text, for each built-in strategy that has it."""
    from quotewise.quoting.params import BUILTIN_PARAMS

    return {
        strategy: text(params().model_dump(mode="json")[name])
        for strategy, params in BUILTIN_PARAMS.items()
        if name in params.model_fields
    }


def text(value: Any) -> str:
    """A default as the help shows it: ``none``, ``true``, ``1tick``, ``5s``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def split_settings(
    values: Mapping[str, Any], keep_none: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(strategy params, risk limits, venue settings)`` from one mapping of settings. ``None`` is a
    flag not given and is dropped, unless ``keep_none`` (a config change: None turns a limit off).
    Every name that is neither a risk limit nor a venue setting is the strategy's, which names what
    it does not know."""
    from quotewise.risk.config import RiskConfig

    params: dict[str, Any] = {}
    risk: dict[str, Any] = {}
    venue: dict[str, Any] = {}
    for key, value in values.items():
        if value is None and not keep_none:
            continue
        if key in RiskConfig.model_fields:
            risk[key] = value
        elif key in VenueSettings.model_fields:
            venue[key] = value
        else:
            params[key] = value
    return params, risk, venue


class VenueSettings(BaseModel):
    """The simulated venue's settings, shared by ``mm backtest`` and the paper venue of ``mm start``:
    latencies, the queue model (docs/fill-rules.md) and what to change in the data's listing (fees,
    contract, minimums; docs/contracts.md)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    latency_entry: Duration = Field("1ms", description="order entry latency (a bare number is ms)")
    latency_response: Duration = Field("1ms", description="order response latency")
    feed_latency: Duration = Field("0ms", description="extra delay before the strategy sees an event")
    queue: Literal["auto", "fifo", "risk-averse", "prob"] = Field(
        "auto",
        description="queue model: auto (fifo on order-level, L3, data, else risk-averse), fifo, risk-averse "
        "or prob",
    )
    queue_power: float = Field(3.0, gt=0, description="exponent n of the probabilistic queue model")
    maker_fee: Fee | None = Field(None, description="maker fee, e.g. -0.2bp (negative: a rebate)")
    taker_fee: Fee | None = Field(None, description="taker fee, e.g. 0.5bp")
    contract: Literal["linear", "inverse", "quanto"] | None = Field(
        None, description="contract kind (default: from the venue's listing, docs/contracts.md)"
    )
    contract_size: float | None = Field(
        None,
        gt=0,
        description="linear: base units per unit of size; inverse: quote currency per contract "
        "(COIN-M BTC 100); quanto: settlement currency per point per contract",
    )
    min_size: float | None = Field(
        None, gt=0, description="the venue's smallest order size, instrument units"
    )
    min_notional: float | None = Field(
        None, ge=0, description="the venue's smallest order value, quote currency (0: none)"
    )

    def listing(self, instrument: Instrument) -> Instrument:
        """``instrument`` with the fees, contract and minimums given here (the others as listed)."""
        from quotewise.model.catalog import with_overrides

        return with_overrides(
            instrument,
            **{k: getattr(self, k) for k in LISTING_FIELDS},
        )

    def sim_config(self, l3: bool, interval_ns: int) -> SimConfig:
        """The simulator's configuration for data with (``l3``) or without order-level events."""
        from quotewise.sim.exchange import SimConfig

        queue = ("fifo" if l3 else "risk-averse") if self.queue == "auto" else self.queue
        if queue == "fifo" and not l3:
            raise ConfigError("the fifo queue model needs order-level (L3) data; use risk-averse or prob")
        return SimConfig(
            entry_latency_ns=self.latency_entry,
            response_latency_ns=self.latency_response,
            feed_latency_ns=self.feed_latency,
            queue=queue,
            queue_power=self.queue_power,
            interval_ns=interval_ns,
        )


LISTING_FIELDS = ("maker_fee", "taker_fee", "contract", "contract_size", "min_size", "min_notional")


def venue_settings(values: Mapping[str, Any] | None, name: Callable[[str], str] = str) -> VenueSettings:
    """The venue settings in ``values`` (None entries: not given), validated; every bad value is
    named in one ConfigError line, by ``name(field)`` (the CLI names its flags)."""
    try:
        return VenueSettings(**{k: v for k, v in (values or {}).items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(one_line(exc, name)) from None


# -- configuration files ------------------------------------------------------------------------
# ``--config FILE`` on mm backtest, mm start and mm config: a tested setup kept, shared and rerun.
# The strategy's name and params, optionally risk limits and the venue's settings, in the units of
# the flags (docs/cli.md shows one); flags and --set override single values. Unknown keys and
# settings a section does not have are rejected by name, so a typo never falls back to a default.

CONFIG_KEYS = ("strategy", "params", "risk", "venue")


def read_yaml(path: Path, what: str) -> Any:
    """The document of a YAML file; a missing file or bad YAML is a ConfigError naming the file."""
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc


def _resolve(spec: str, base: Path) -> str:
    """A strategy given as ``file.py:Class`` with a relative path is looked up beside the config."""
    where, sep, cls = spec.rpartition(":")
    if sep and where.endswith(".py") and not Path(where).is_absolute() and (base / where).exists():
        return f"{base / where}:{cls}"
    return spec


def load_config(path: str | Path) -> tuple[str, dict[str, object]]:
    """``(strategy name, settings)`` from a YAML file, with every key checked; the settings are the
    strategy's params, the risk limits and the venue settings in one mapping (their names differ)."""
    from quotewise.quoting.loader import strategy_class
    from quotewise.risk.config import RiskConfig

    path = Path(path)
    doc = read_yaml(path, "config file")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with 'strategy:' and 'params:'")
    unknown = sorted(str(k) for k in doc if k not in CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; a config has only {list(CONFIG_KEYS)}")
    name = doc.get("strategy")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: 'strategy:' must name a strategy (e.g. skew, glft, file.py:Class)")
    name = _resolve(name.strip(), path.parent)
    sections = {
        "params": strategy_class(name).Params.model_fields,
        "risk": RiskConfig.model_fields,
        "venue": VenueSettings.model_fields,
    }
    settings: dict[str, object] = {}
    for section, fields in sections.items():
        raw = doc.get(section) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: '{section}:' must be a mapping of name: value")
        values = {str(k).replace("-", "_"): v for k, v in raw.items()}
        bad = sorted(k for k in values if k not in fields)
        if bad:
            raise ConfigError(
                f"{path}: unknown {section} {bad}"
                + (f" for strategy {name!r}" if section == "params" else "")
                + f"; it takes {', '.join(sorted(fields))}"
            )
        settings.update(values)
    return name, settings


def parse_settings(items: list[str]) -> dict[str, object]:
    """``key=value`` pairs; values are read as YAML scalars (numbers, booleans) or kept as text."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed = yaml.safe_load(value) if value.strip() else ""
        out[key.strip().replace("-", "_")] = (
            parsed if isinstance(parsed, int | float | bool) else value.strip()
        )
    return out
