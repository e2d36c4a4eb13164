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


COMPILING = "compiling the simulator (first run only, about 30-60 s)..."


def simulator_cold() -> bool:
    """True when numba holds no compiled simulator to load (:func:`quotewise.sim.loop.run_segment`):
    a fresh machine, a new numba, or an edited source. Read from numba's own index of the function's
    cache (the ``.nbi`` file its cache locator names, ``NUMBA_CACHE_DIR`` included), which reads empty
    when absent or stale: a lookup of milliseconds, nothing compiled."""
    from quotewise.sim.loop import run_segment

    try:
        return not run_segment._cache._cache_file._load_index()
    except Exception:  # numba's internals moved, or an unreadable index: a notice never stops a run
        return False


def compile_notice(text: str = COMPILING) -> bool:
    """Say on stderr, before a run that will compile the simulator, that the wait is expected: the
    first run on a machine compiles for 30 s or more, which without a word looks like a hang.
    Returns whether it will compile."""
    cold = simulator_cold()
    if cold:
        err_console.print(text, markup=False, highlight=False)
    return cold
