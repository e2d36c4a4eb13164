"""The flags of every strategy setting, risk limit and simulated-venue setting, generated from their
models (:mod:`quotewise.settings`), so ``mm backtest``, ``mm start`` and ``mm config`` take the same
flags with the same names, units and defaults, and a new setting is a flag on all of them at once.

A flag's value is read by the model that owns it (``--spread 2`` is 2 ticks, ``--interval 5000`` is
5 s: :mod:`quotewise.parsing`); a flag not given is None: the default on ``backtest`` and ``start``,
unchanged on ``config`` (which has no venue flags: a running maker's venue stays as it started).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo
from rich.markup import escape

from quotewise.quoting.params import BUILTIN_PARAMS
from quotewise.risk.config import RiskConfig
from quotewise.settings import DEFAULT_STRATEGY, VenueSettings, strategy_defaults, strategy_fields, text

STRATEGIES = " | ".join([*BUILTIN_PARAMS, "file.py:Class", "package.module:Class"])
# the options every command with settings has, besides a flag per setting
Pairs = Annotated[
    list[str] | None, typer.Option("--set", help="any setting as key=value (repeatable; wins over flags)")
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(help="YAML file with 'strategy:', 'params:', 'risk:', 'venue:'; flags and --set override"),
]

STRATEGY_PANEL = "Strategy settings (docs/models.md)"
RISK_PANEL = "Risk limits (docs/risk.md)"
VENUE_PANEL = "Simulated venue (docs/fill-rules.md, docs/contracts.md)"


def flag(field_name: str) -> str:
    """The flag of a setting: ``max_loss_window`` -> ``--max-loss-window``."""
    return "--" + field_name.replace("_", "-")


def _flag_type(field: FieldInfo) -> type:
    """What the command line reads before the model does: booleans as --x/--no-x and plain numbers
    as numbers; distances, durations and choices as text for their own parser."""
    annotation = field.annotation
    if field.metadata and any(hasattr(m, "func") for m in field.metadata):
        return str  # an Annotated type with its own parser (Duration, Distance)
    base = {a for a in typing.get_args(annotation) if a is not type(None)} or {annotation}
    if base == {bool}:
        return bool
    if base == {int}:
        return int
    if base in ({float}, {int, float}):
        return float
    return str


def _choices(field: FieldInfo) -> str:
    """`` (a|b|c)`` for a setting with a fixed set of values, unless its description lists them."""
    args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    literal = [a for a in args if typing.get_origin(a) is Literal] or (
        [field.annotation] if typing.get_origin(field.annotation) is Literal else []
    )
    values = [str(v) for lit in literal for v in typing.get_args(lit)]
    if not values or values[0] in (field.description or ""):
        return ""
    return " (" + "|".join(values) + ")"


def _strategy_help(name: str, field: FieldInfo) -> tuple[str, str]:
    """Help text and the default shown: the default strategy's, with the strategies that differ."""
    defaults = strategy_defaults(name)
    main = defaults.get(DEFAULT_STRATEGY, next(iter(defaults.values())))
    others = [f"{s}: {d}" for s, d in defaults.items() if d != main]
    shown = main + (f" ({', '.join(others)})" if others else "")
    only = "" if len(defaults) == len(BUILTIN_PARAMS) else f" [{', '.join(defaults)}]"
    return f"{field.description}{_choices(field)}{only}", shown


def _option(name: str, field: FieldInfo, help_text: str, shown: str, panel: str) -> inspect.Parameter:
    kind = _flag_type(field)
    decls = [f"{flag(name)}/--no-{name.replace('_', '-')}"] if kind is bool else [flag(name)]
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            kind | None,
            typer.Option(
                *decls,
                help=escape(f"{help_text}  [default: {shown}]"),
                show_default=False,
                rich_help_panel=panel,
            ),
        ],
    )


def setting_parameters(venue: bool = True) -> list[inspect.Parameter]:
    """One keyword parameter per strategy setting and risk limit (and venue setting), for Typer."""
    out = [
        _option(name, field, *_strategy_help(name, field), STRATEGY_PANEL)
        for name, field in strategy_fields().items()
    ]
    groups = [(RiskConfig, RISK_PANEL, "off")] + (
        [(VenueSettings, VENUE_PANEL, "as listed")] if venue else []
    )
    for model, panel, unset in groups:
        defaults = model().model_dump(mode="json")
        out += [
            _option(
                name,
                field,
                f"{field.description}{_choices(field)}",
                unset if defaults[name] is None else text(defaults[name]),
                panel,
            )
            for name, field in model.model_fields.items()
        ]
    return out


def with_settings(venue: bool = True) -> Callable[[Callable], Callable]:
    """Give a command a flag for every strategy setting and risk limit (and, with ``venue``, every
    simulated-venue setting) besides its own parameters; it takes them as ``**settings`` (None where
    a flag was not given)."""

    def give(func: Callable) -> Callable:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        func.__signature__ = sig.replace(parameters=own + setting_parameters(venue))  # type: ignore[attr-defined]
        return func

    return give


def given(flags: dict[str, Any], pairs: list[str] | None) -> dict[str, Any]:
    """The settings given: the flags given, then ``--set key=value`` pairs (which win)."""
    from quotewise.settings import parse_settings

    return {**{k: v for k, v in flags.items() if v is not None}, **parse_settings(pairs or [])}
