"""An MCP server (Model Context Protocol) so that AI agents drive the engine as a person does.

Every tool that touches a maker calls the engine's HTTP API with the caller's key, so the API's
checks (the key's role, the risk limits, the settings' validation) apply to an agent exactly as to a
person on ``mm``; a refusal (401, 403, 422, ...) comes back as a tool error naming the reason. This
module checks nothing itself.

Two transports:

* stdio (``mm mcp``, ``python -m quotewise.live.mcp_server``): the key is ``QW_API_KEY``, else the
  local token file the CLI uses; the engine is the one the engine file names (``mm engine start``).
* streamable HTTP at ``/mcp`` on the engine's own app (:func:`mount_http`): each request's
  ``Authorization: Bearer KEY`` is the key its tool calls use, so roles apply per caller.

``backtest`` and ``quote`` run here (they need no engine), after the key is checked against the
engine when one runs. docs/mcp.md describes the tools.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from quotewise.data.synthetic import synthetic_events
from quotewise.errors import QuotewiseError
from quotewise.live import paths
from quotewise.live.books import check_book_name
from quotewise.live.client import EngineClient, EngineNotRunning, EngineRefused, error_detail
from quotewise.quoting.preview import quote_preview
from quotewise.settings import DEFAULT_STRATEGY

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

ACTOR = "mcp"  # X-Actor: the audit's name for a call with the engine's own token (a key's: the key's name)
MCP_PATH = "/mcp"
DEFAULT_EVENTS = 200_000
MAX_EVENTS = 5_000_000  # a backtest's synthetic market, at most (a few seconds of one CPU)

ClientFactory = Callable[["Request | None"], EngineClient]
"""The engine client for one call: given the HTTP request that carried it (None over stdio)."""


class AppClient(EngineClient):
    """:class:`EngineClient` for the API of ``app`` in this process (the engine that serves the MCP
    endpoint), with a caller's key (none: no header, which the API answers 401). The request goes
    through the app as any other: its routes, its key and role checks, its validation; only the
    network is skipped, so the engine's address and TLS do not matter. Called from a worker thread
    of the event loop that runs ``app`` (where the SDK runs a tool)."""

    def __init__(self, app: ASGIApp, key: str | None, actor: str = ACTOR, timeout: float = 15.0) -> None:
        self.app = app
        self.base = "http://engine"
        self.info = {}
        self.key_source = "the request's Authorization header"
        self.headers = {"X-Actor": actor}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        timeout: float | None = None,
    ) -> Any:
        import anyio.from_thread
        import httpx

        timeout = self.timeout if timeout is None else timeout

        async def send() -> httpx.Response:
            # an exception in the app is its 500, as over the network
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url=self.base) as http:
                return await http.request(
                    method, path, json=body, params=params, headers=self.headers, timeout=timeout
                )

        r = anyio.from_thread.run(send)
        if r.status_code >= 400:
            raise EngineRefused(f"{error_detail(r)} (HTTP {r.status_code})")
        return r.json()


def local_client(request: Request | None = None) -> EngineClient:
    """The stdio server's client: ``mm``'s (the engine the engine file names, read at every call so
    an engine restarted elsewhere is found; the key ``QW_API_KEY``, else the local token file)."""
    return EngineClient(actor=ACTOR)


def bearer(headers: Mapping[str, str] | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header (None: no such header)."""
    value = (headers or {}).get("authorization") or ""
    scheme, _, key = value.partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


def app_client_factory(app: ASGIApp) -> ClientFactory:
    """The mounted server's clients: ``app``'s own API, with each request's key."""

    def factory(request: Request | None) -> EngineClient:
        if request is None:
            raise ToolError("this MCP endpoint answers HTTP requests only")
        return AppClient(app, bearer(request.headers))

    return factory


def _settings(named: Mapping[str, Any], settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The named settings given, then ``settings`` (which wins, as ``--set`` does on ``mm``), every
    name with ``-`` read as ``_``."""
    out = {k: v for k, v in named.items() if v is not None}
    out.update({str(k).replace("-", "_"): v for k, v in (settings or {}).items()})
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# -- the arguments agents see ------------------------------------------------------------------------
MakerId = Annotated[str, Field(description="the maker's id, as list_makers or start_maker gave it")]
BookName = Annotated[str, Field(description="the book's name, as list_books gives it")]
BookLimit = Annotated[
    float | None,
    Field(description="in the book's quote currency, >= 0; null or left out: no such limit"),
]
Settings = Annotated[
    dict[str, Any] | None,
    Field(
        description="any strategy setting, risk limit or simulated-venue setting by the name of its mm flag "
        'with \'-\' as \'_\', in the flag\'s units: e.g. {"spread": "2ticks", "interval": "500ms", '
        '"max_pos": 5, "max_loss": 100, "queue": "prob", "maker_fee": "-0.2bp"} (mm start --help lists '
        "them all; docs/settings.md). Wins over the named arguments."
    ),
]
Spread = Annotated[
    str | float | None,
    Field(
        description="distance from fair value to each quote: 2 (ticks), '2ticks', '5bp', '0.1%' or '0.05px'"
    ),
]
Size = Annotated[float | None, Field(description="order size in instrument units (default: the minimum)")]
Interval = Annotated[
    str | float | None,
    Field(description="time between quote decisions: '500ms', '5s' (a bare number is ms)"),
]
MaxPos = Annotated[float | None, Field(description="risk limit: the largest |position|, instrument units")]
MaxLoss = Annotated[
    float | None, Field(description="risk limit: the loss that halts trading, settlement currency")
]
Strategy = Annotated[
    str | None,
    Field(
        description="symmetric | skew | ladder | avellaneda-stoikov | glft | file.py:Class | "
        f"package.module:Class (default {DEFAULT_STRATEGY})"
    ),
]

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
CHANGES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True)
STOPS = ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=True)
LOCAL = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)

INSTRUCTIONS = """\
Quotewise runs market makers (makers) in a live engine: on paper (a data file or synthetic market
replayed through a simulator) or on an exchange with real orders. You act with the rights of your
API key: a viewer key reads, a trader key starts, configures, halts and stops makers, an admin key
does everything; the engine enforces the key's role and every risk limit and answers a refusal with
its reason (HTTP 401: no or wrong key, 403: the key's role is too small, 422: a bad value). Try a
setup with `backtest` (and a single decision with `quote`) before starting a maker with it: the
settings have the same names and units in all three. Makers may be grouped in a book (start_maker
with settings {"book": NAME}): list_books and get_book show books, their totals and limits;
set_book_limits (admin) sets the limits that halt the whole book on a breach."""


def build_server(client_factory: ClientFactory = local_client, name: str = "quotewise") -> MCPServer:
    """The MCP server: eleven tools and two resources. ``client_factory`` gives the engine client of
    each call from the HTTP request that carried it (None over stdio); every engine call goes through
    it, so the engine's rights and limits are the caller's key's."""
    server = MCPServer(name, instructions=INSTRUCTIONS, log_level="WARNING")
    latest: dict[str, Any] = {}  # this server's latest backtest: summary, report, out_dir
    backtest_lock = threading.Lock()

    def client(ctx: Context | None) -> EngineClient:
        request = ctx.request_context.request if ctx is not None else None
        try:
            return client_factory(request)
        except QuotewiseError as exc:
            raise ToolError(str(exc)) from None

    def engine(ctx: Context | None, fn: Callable[[EngineClient], Any]) -> Any:
        """``fn`` on the caller's client; a refusal is the tool's error, with the engine's reason."""
        api = client(ctx)
        try:
            return fn(api)
        except QuotewiseError as exc:
            raise ToolError(str(exc)) from None

    def local_run_allowed(ctx: Context | None, strategy: str) -> None:
        """A local tool (backtest, quote) needs a key the engine accepts; with no engine running
        (stdio only) there is nothing to check it against, and a person could run mm anyway. Over
        HTTP it runs in the engine's process, so only a built-in strategy: loading a caller's Python
        file or module there would be more than any key's role allows."""
        request = ctx.request_context.request if ctx is not None else None
        if request is not None and ":" in strategy:
            raise ToolError(
                f"strategy {strategy!r}: over HTTP, backtest and quote run built-in strategies only "
                "(symmetric, skew, ladder, avellaneda-stoikov, glft); a strategy file runs over stdio"
            )
        try:
            client_factory(request).health()
        except EngineNotRunning:
            return
        except QuotewiseError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=READ_ONLY)
    def list_makers(ctx: Context) -> list[dict[str, Any]]:
        """Every maker the engine knows, running or not: id, market, venue, strategy, status
        (running, stopped, failed, ...), fill count and data. Use maker_status for one maker's details."""
        return engine(ctx, lambda api: api.list())

    @server.tool(annotations=READ_ONLY)
    def maker_status(id: MakerId, ctx: Context) -> dict[str, Any]:
        """One maker's state: status, working quotes (side, price, size, status), position, P&L, cash,
        fees, fills, best bid and ask, the number of decisions made, the risk state (halted, blocked)
        and, for a failed maker, its error. Prices and sizes are in the instrument's units."""
        return engine(ctx, lambda api: api.status(id))

    @server.tool(annotations=CHANGES)
    def start_maker(
        ctx: Context,
        venue: Annotated[
            str,
            Field(
                description="where to trade: 'paper' (a replayed file or synthetic market, no real orders), "
                "or a real venue: polymarket, kalshi or a ccxt exchange id such as binanceusdm (real orders, "
                "with the engine's own API keys)"
            ),
        ] = "paper",
        market: Annotated[
            str | None,
            Field(
                description="paper: the data's market (synthetic data is SYNTH; default: the data's); an "
                "exchange: its ccxt symbol, e.g. BTC/USDT:USDT; polymarket: the outcome token id; kalshi: "
                "the market ticker"
            ),
        ] = None,
        data: Annotated[
            str | None,
            Field(
                description="paper: the file to replay (any format mm data reads), 'synthetic' or "
                "'synthetic:N' (N events)"
            ),
        ] = None,
        speed: Annotated[float, Field(gt=0, description="paper: replay speed, times real time")] = 1.0,
        strategy: Strategy = None,
        name: Annotated[
            str | None,
            Field(description="the maker's id (letters, digits, . _ -; default: mm-<random>)"),
        ] = None,
        spread: Spread = None,
        size: Size = None,
        interval: Interval = None,
        max_pos: MaxPos = None,
        max_loss: MaxLoss = None,
        settings: Settings = None,
        endpoint: Annotated[
            str | None,
            Field(
                description="an exchange: send its requests to this origin (a proxy, mm venue serve), "
                "or 'testnet'"
            ),
        ] = None,
        neg_risk: Annotated[
            bool, Field(description="polymarket: the market is one outcome of a negative-risk event")
        ] = False,
    ) -> dict[str, Any]:
        """Start a market maker, as `mm start` does; returns its id. The settings are those of
        `mm start` and `backtest`, with the same names and units, so a setup that was backtested runs
        live. The engine checks every value and the key's role (trader or admin) and refuses with the
        reason; nothing starts then. Poll maker_status for its quotes and decisions."""
        values = _settings(
            {"spread": spread, "size": size, "interval": interval, "max_pos": max_pos, "max_loss": max_loss},
            settings,
        )
        spec = {
            "venue": venue,
            "market": market,
            "data": data,
            "endpoint": endpoint,
            "speed": speed,
            "neg_risk": neg_risk,
            "strategy": strategy or DEFAULT_STRATEGY,
            "name": name,
            **values,
        }
        maker_id = engine(ctx, lambda api: api.start_by_flags(spec))
        return {"id": maker_id}

    @server.tool(annotations=STOPS)
    def stop_maker(id: MakerId, ctx: Context) -> dict[str, Any]:
        """Cancel all of a maker's orders and stop it (its position stays as it is: see halt with
        flatten to close it). Returns its final fill count and position. A stopped maker's status and
        fills stay readable."""
        return engine(ctx, lambda api: api.stop(id))

    @server.tool(annotations=CHANGES)
    def configure_maker(
        id: MakerId,
        ctx: Context,
        changes: Annotated[
            dict[str, Any] | None,
            Field(
                description="settings to change, by mm flag name with '-' as '_', in the flags' units: e.g. "
                '{"spread": "15ticks", "max_pos": 3}; null turns a risk limit off. Empty: just show the '
                "config. A running maker's venue and strategy stay as they started."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Show or change a running maker's strategy settings and risk limits (as `mm config`); a
        change takes effect at its next requote and is audited. Returns the whole config with its new
        version. The engine validates every value and refuses a bad one with the reason."""
        normalized = {str(k).replace("-", "_"): v for k, v in (changes or {}).items()}
        return engine(ctx, lambda api: api.config(id, normalized))

    @server.tool(annotations=STOPS)
    def halt(
        id: MakerId,
        ctx: Context,
        flatten: Annotated[
            bool, Field(description="also close the position with an order across the spread")
        ] = False,
    ) -> dict[str, Any]:
        """Halt a maker now, as its risk guard does on a breached limit: its orders are cancelled and
        it quotes no more until reconfigured or restarted; with flatten, its position is closed too.
        Use this in an emergency; stop_maker ends the maker instead."""
        return engine(
            ctx,
            lambda api: api.call("POST", f"/maker/{id}/halt", params={"flatten": str(flatten).lower()}),
        )

    def book_path_name(name: str) -> str:
        """``name`` as a path segment of the book routes: a name no book can have (a ``/`` or ``?`` in
        it would reach another route) is refused here, naming it, as the engine refuses it at start."""
        try:
            return check_book_name(name)
        except QuotewiseError as exc:
            raise ToolError(f"no book {name!r}: {exc}") from None

    @server.tool(annotations=READ_ONLY)
    def list_books(ctx: Context) -> list[dict[str, Any]]:
        """Every book (a group of makers with shared totals and limits), as GET /books: each as
        {book: its name, makers: the ids of its makers, limits: {max_loss, max_gross, max_net, flatten}
        or null}. Use get_book for a book's P&L and exposure totals and which limits are breached."""
        return engine(ctx, lambda api: api.books())

    @server.tool(annotations=READ_ONLY)
    def get_book(name: BookName, ctx: Context) -> dict[str, Any]:
        """One book, as GET /books/{name}: each maker's line (id, market, status, halted, position, P&L
        and signed exposure in the book's quote currency, share of the gross), the totals (pnl,
        net_exposure, gross_exposure), currency, unpriced makers (quanto), the limits and the breaches
        now ({limit, value, threshold}). An unknown name is an error naming it (HTTP 404)."""
        return engine(ctx, lambda api: api.book(book_path_name(name)))

    @server.tool(annotations=STOPS)
    def set_book_limits(
        name: BookName,
        ctx: Context,
        max_loss: BookLimit = None,
        max_gross: BookLimit = None,
        max_net: BookLimit = None,
        var_1m: BookLimit = None,
        flatten: Annotated[
            bool, Field(description="a breach also closes every position of the book")
        ] = False,
        action: Annotated[
            Literal["halt", "pause", "reduce"],
            Field(
                description="what a breach does: halt the makers, pause their quoting, or let them quote "
                "only the side that reduces their position"
            ),
        ] = "halt",
        pause_for: Annotated[
            str | None,
            Field(description="pause, reduce: how long, on each maker's clock (e.g. 30s; default 1m)"),
        ] = None,
    ) -> dict[str, Any]:
        """Set a book's limits (as `mm book limits`; an admin key only, the engine refuses others with
        HTTP 403). They REPLACE the book's last limits: a limit left out is removed, so read get_book
        first and pass the ones to keep. At least one limit. Breached when the book's P&L < -max_loss,
        gross exposure > max_gross, |net exposure| > max_net or its 99% 1-minute VaR (from its P&L
        each second, the last 300 changes) > var_1m; the engine then halts every running
        maker of the book, whoever started it (flatten: closing their positions too), within 100 ms
        and again after a resume while still beyond; with action pause (reduce) it pauses them (lets
        them quote only the side that reduces each position) for pause_for instead, again while still
        beyond when that ends. Returns the book as get_book does."""
        body = {"max_loss": max_loss, "max_gross": max_gross, "max_net": max_net, "var_1m": var_1m}
        body |= {"flatten": flatten, "action": action, "pause_for": pause_for}
        return engine(ctx, lambda api: api.set_book_limits(book_path_name(name), body))

    @server.tool(annotations=LOCAL)
    def backtest(
        ctx: Context,
        data: Annotated[
            str,
            Field(
                description="'synthetic' (events long), 'synthetic:N', or a data file on the engine's machine"
            ),
        ] = "synthetic",
        strategy: Strategy = None,
        events: Annotated[
            int,
            Field(
                gt=0, le=MAX_EVENTS, description=f"synthetic data: events to simulate (at most {MAX_EVENTS})"
            ),
        ] = DEFAULT_EVENTS,
        seed: Annotated[int, Field(description="synthetic data: the random seed")] = 0,
        spread: Spread = None,
        size: Size = None,
        interval: Interval = None,
        max_pos: MaxPos = None,
        max_loss: MaxLoss = None,
        settings: Settings = None,
    ) -> dict[str, Any]:
        """Backtest a setup on historical or synthetic data, as `mm backtest` does (no orders, no engine
        maker): returns the run's summary (total_pnl, fills, traded volume, max position, fees,
        risk events, ...) and the path of its HTML report. The settings have the names and units of
        start_maker's. One backtest runs at a time; the latest is the resource backtest://latest."""
        import quotewise.api as qw

        strategy = strategy or DEFAULT_STRATEGY
        local_run_allowed(ctx, strategy)
        try:
            n = events if data == "synthetic" else synthetic_events(data)
        except QuotewiseError as exc:
            raise ToolError(str(exc)) from None
        if n is not None and not 0 < n <= MAX_EVENTS:
            raise ToolError(f"a synthetic backtest has 1 to {MAX_EVENTS} events, not {n}")
        out = (
            paths.data_dir()
            / "mcp"
            / "backtests"
            / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        )
        values = _settings(
            {"spread": spread, "size": size, "interval": interval, "max_pos": max_pos, "max_loss": max_loss},
            settings,
        )
        with backtest_lock:
            try:
                run = qw.backtest(
                    data,
                    strategy,
                    events=events,
                    seed=seed,
                    out=out,
                    report=True,
                    **values,
                )
            except QuotewiseError as exc:
                raise ToolError(str(exc)) from None
        report = Path(out) / "report.html"
        result = {
            "summary": _jsonable(run.summary),
            "report": str(report) if report.exists() else None,
            "out_dir": str(out),
        }
        latest.clear()
        latest.update(result)
        return result

    @server.tool(annotations=LOCAL)
    def quote(
        ctx: Context,
        strategy: Strategy = None,
        mid: Annotated[float | None, Field(description="mid price: a two-tick market around it")] = None,
        bid: Annotated[float | None, Field(description="best bid (with ask, instead of mid)")] = None,
        ask: Annotated[float | None, Field(description="best ask (with bid)")] = None,
        bid_size: Annotated[float, Field(description="size at the best bid, in lots")] = 1.0,
        ask_size: Annotated[float, Field(description="size at the best ask, in lots")] = 1.0,
        inventory: Annotated[float, Field(description="current position, instrument units")] = 0.0,
        tick: Annotated[float, Field(gt=0, description="tick size")] = 0.01,
        lot: Annotated[float, Field(gt=0, description="lot size")] = 1.0,
        maker_fee: Annotated[str, Field(description="maker fee, e.g. '-0.2bp' (negative: a rebate)")] = "0",
        taker_fee: Annotated[str, Field(description="taker fee, e.g. '0.5bp'")] = "0",
        settings: Annotated[
            dict[str, Any] | None,
            Field(
                description='the strategy\'s settings by name, e.g. {"spread": "2ticks"}; glft and '
                'avellaneda-stoikov need {"sigma": ..., "gamma": ..., "A": ..., "k": ...}'
            ),
        ] = None,
    ) -> dict[str, Any]:
        """The quotes a strategy would post for a given book and inventory, before risking money (as
        `mm quote --json`): the bids and asks (price, size), the market used and the strategy's state
        (fair value, half spreads, inventory band, ...). Give mid, or bid and ask."""
        strategy = strategy or DEFAULT_STRATEGY
        local_run_allowed(ctx, strategy)
        try:
            preview = quote_preview(
                strategy,
                mid=mid,
                bid=bid,
                ask=ask,
                bid_size=bid_size,
                ask_size=ask_size,
                inventory=inventory,
                tick=tick,
                lot=lot,
                maker_fee=maker_fee,
                taker_fee=taker_fee,
                params={str(k).replace("-", "_"): v for k, v in (settings or {}).items()},
            )
        except QuotewiseError as exc:
            raise ToolError(str(exc)) from None
        return _jsonable(preview)

    @server.resource(
        "maker://{id}/status",
        name="maker status",
        description="A maker's status (what maker_status returns), as JSON",
        mime_type="application/json",
    )
    def maker_status_resource(id: str, ctx: Context) -> str:
        try:
            return json.dumps(engine(ctx, lambda api: api.status(id)))
        except ToolError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource(
        "backtest://latest",
        name="latest backtest",
        description="The summary and report path of the latest backtest this server ran (null before one)",
        mime_type="application/json",
    )
    def latest_backtest() -> str:
        return json.dumps(dict(latest) or {"summary": None, "report": None})

    return server


def run_stdio() -> None:
    """Serve the tools over stdio (``mm mcp``) for the engine of this machine's engine file."""
    build_server(local_client).run("stdio")


class _Endpoint:
    """The MCP endpoint: 401 to a request without ``Authorization: Bearer`` (a key that is there is
    checked by the engine at each call its tools make), else the SDK's streamable-HTTP handler of
    the session manager the app's lifespan runs now."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.responses import JSONResponse

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if bearer(headers) is None:
            response = JSONResponse(
                {"detail": "an API key is needed: Authorization: Bearer KEY"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.server.session_manager.handle_request(scope, receive, send)


def mount_http(app: FastAPI, path: str = MCP_PATH, client_factory: ClientFactory | None = None) -> MCPServer:
    """Serve the tools as a streamable-HTTP MCP endpoint at ``path`` on ``app`` (the engine's): each
    request's bearer key is the key of its tool calls, which go through ``app``'s own API (the
    default ``client_factory``), so the key's role and the engine's checks apply per caller."""
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    server = build_server(client_factory or app_client_factory(app))
    app.router.routes.append(Route(path, endpoint=_Endpoint(server)))
    before = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # a session manager runs once: a new one for each run of the app (tests enter apps again)
        # stateless: each POST stands alone, with its own key; JSON answers (no stream to keep open)
        # no Host/Origin allow-list (the SDK's guard against DNS rebinding of a keyless local server):
        # every call needs a key a browser page does not have, and an engine listening beyond this
        # machine (mm engine start --listen) is reached under names no list here could know
        server.streamable_http_app(
            streamable_http_path=path,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with server.session_manager.run(), before(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    return server


if __name__ == "__main__":
    run_stdio()
