"""Render the `mm` command reference (docs/cli.md) and the table of strategy settings
(docs/models.md) from the code itself, so the docs cannot drift.

python -m quotewise.clidoc > docs/cli.md
python -m quotewise.clidoc --settings   (the table docs/models.md holds under "Parameters")
"""

from __future__ import annotations

from typing import Any

import typer


def _default(param: Any) -> str:
    if param.default in (None, ()) or (param.is_flag and not param.secondary_opts and param.default is False):
        return ""
    if param.is_flag and param.secondary_opts:
        chosen = param.opts[0] if param.default else param.secondary_opts[0]
        return f" (default: `{chosen}`)"
    return f" (default: `{param.default}`)"


def _row(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"| `{param.name.upper()}` | argument{'' if param.required else ', optional'} |"
    names = " / ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
    repeat = " Repeatable." if param.multiple and "repeat" not in (param.help or "") else ""
    text = (param.help or "").replace("|", "/").replace("\\[", "[")  # rich's escape of [default: ...]
    return f"| {names} | {text}{repeat}{_default(param)} |"


def _render(cmd: Any, path: str, out: list[str]) -> None:
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            _render(cmd.commands[name], f"{path} {name}", out)
        return
    out.append(f"## `{path}`\n")
    out.append((cmd.help or "").strip() + "\n")
    if cmd.params:
        out.append("| option | meaning |\n|---|---|")
        out.extend(_row(p) for p in cmd.params)
        out.append("")


def render(app: typer.Typer) -> str:
    out = [
        "# Command-line reference\n",
        "Generated from the CLI by `python -m quotewise.clidoc > docs/cli.md`; a test keeps it current.",
        "Every command also prints this with `--help`.\n",
    ]
    _render(typer.main.get_command(app), "mm", out)
    return "\n".join(out).rstrip() + "\n"


def settings_table() -> str:
    """Every setting of the built-in strategies: which strategies have it, its default, its meaning."""
    from quotewise.quoting.params import BUILTIN_PARAMS
    from quotewise.settings import strategy_defaults, strategy_fields

    rows = ["| setting | strategies | default | meaning |", "|---|---|---|---|"]
    for name, field in strategy_fields().items():
        defaults = strategy_defaults(name)
        which = "all" if len(defaults) == len(BUILTIN_PARAMS) else ", ".join(defaults)
        shown = set(defaults.values())
        default = shown.pop() if len(shown) == 1 else "; ".join(f"{s}: {d}" for s, d in defaults.items())
        rows.append(f"| `{name}` | {which} | `{default}` | {(field.description or '').replace('|', '/')} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    from quotewise.cli import app

    print(settings_table() if "--settings" in sys.argv else render(app), end="")
