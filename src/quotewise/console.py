"""Where ``mm`` prints, and how it tells a person that something went wrong.

Messages are one logical line each and are never hard-wrapped: a terminal wraps them itself, and a
log or a pipe keeps a file path whole (Rich wraps at 80 columns when output is not a terminal,
which split paths mid-name). Text from errors is escaped so that brackets in it stay text.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(exc: Exception | str, code: int = 2) -> NoReturn:
    """Print ``error: <what was wrong>`` on stderr and exit (2: the request was wrong)."""
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


def warn(text: str) -> None:
    """Print ``warning: <text>`` on stderr: the run goes on, but the user should know."""
    err_console.print(f"[yellow]warning:[/] {escape(text)}")

