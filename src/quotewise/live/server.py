"""The engine's HTTP API (FastAPI): on 127.0.0.1 unless told to listen elsewhere (then over TLS, or
explicitly insecure), every route behind an API key with a role (:mod:`quotewise.live.auth`).

``python -m quotewise.live.server --db URL --port N`` runs the engine and the API in one event loop;
``mm engine start`` starts it in the background. SIGTERM (or ``POST /engine/stop``) shuts down
gracefully: every maker cancels its orders first.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ValidationError

from quotewise import logs
from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live import KEEP_WARM, paths
from quotewise.live.answers import (
    Health,
    MakerStatus,
    MakerSummary,
    PerformanceReport,
    RiskAlert,
    Started,
)
from quotewise.live.apidocs import docs_page, with_security
from quotewise.live.auth import ROLES, Keys, Principal
from quotewise.live.dashboard import add_dashboard_routes
from quotewise.live.engine import LiveEngine, MakerSpec, UnknownMaker
from quotewise.live.metrics import add_metrics_route
from quotewise.live.store import Store, db_url, default_db_url
from quotewise.live.stream import add_stream_route
from quotewise.live.workers import ShardedEngine, check_workers
from quotewise.parsing import parse_duration

HOST = "127.0.0.1"
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}
logger = logging.getLogger("quotewise.live.server")  # not __name__: run with -m, that is __main__


class ConfigChange(BaseModel):
    changes: dict[str, Any]


class MakerId(BaseModel):
    id: str


class BookLimits(BaseModel):
    """A book's limits in its quote currency (docs/live.md, Books); null: no such limit."""

    max_loss: float | None = None
    max_gross: float | None = None
    max_net: float | None = None
    var_1m: float | None = None
    flatten: bool = False
    action: Literal["halt", "pause", "reduce"] = "halt"
    pause_for: str | None = None  # pause, reduce: how long (e.g. 30s, 5m; default 1m)


def create_app(
    store: Store,
    token: str,
    info: dict[str, Any] | None = None,
    keep_warm_s: float | None = None,
    public_metrics: bool = False,
    workers: int = 1,
    log: Path | None = None,
) -> FastAPI:
    """The API over a new engine on ``store``; ``info`` is written to the engine file once it runs;
    ``/metrics`` answers without a key when ``public_metrics`` (a scraper inside a trusted network).
    ``workers`` > 1: the makers run in that many worker processes (:mod:`quotewise.live.workers`),
    each logging beside ``log``."""
    engine = (
        ShardedEngine(store, workers, keep_warm_s=keep_warm_s, log=log)
        if workers > 1
        else LiveEngine(store, keep_warm_s=keep_warm_s)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        if info is not None:
            paths.write_engine_info(info)
        try:
            yield
        finally:
            await engine.shutdown(cancel_orders=True)
            if info is not None:
                paths.clear_engine_info(info["pid"])

    keys = Keys(store, token)

    def principal(
        authorization: str | None = Header(default=None), x_actor: str = Header(default="cli")
    ) -> Principal:
        """The caller: the engine's own token (an admin naming itself by X-Actor) or an API key."""
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise HTTPException(401, "an API key is needed: Authorization: Bearer KEY", WWW_AUTHENTICATE)
        who = keys.principal(key, x_actor)
        if who is None:
            raise HTTPException(401, "unknown or revoked API key", WWW_AUTHENTICATE)
        return who

    def need(role: str) -> Callable[[Principal], Principal]:
        # a default, not Annotated: the annotations are strings here, and a closure's cannot be resolved
        def check(who: Principal = Depends(principal)) -> Principal:  # noqa: B008
            if not who.can(role):
                raise HTTPException(403, f"{who.name} is a {who.role}: this needs the {role} role")
            return who

        return check

    viewer, trader, admin = (Depends(need(role)) for role in ROLES)

    def owner_or_admin(who: Principal, maker_id: str) -> None:
        """A trader acts on the makers it started; an admin on every maker."""
        if not who.can("admin") and store.maker_owner(maker_id) not in (None, who.name):
            raise HTTPException(403, f"{maker_id} was started by another key: {who.name} may not change it")

    # FastAPI's own /docs, /redoc and /openapi.json would answer without a key: served here instead,
    # behind the viewer role as every read
    app = FastAPI(
        title="Quotewise engine",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.keys = keys  # who a key is, for the routes that are not plain requests (websockets)
    _add_docs(app, viewer)
    add_metrics_route(app, engine, [] if public_metrics else [viewer])
    add_stream_route(app, engine)  # /stream: the key comes as its first message (docs/dashboard.md)
    add_dashboard_routes(app)  # GET / and /dashboard/{app.js,style.css}: no key, the page holds no data

    @app.exception_handler(UnknownMaker)
    async def _unknown(_: Request, exc: UnknownMaker) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ConfigError)
    async def _invalid(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # where and what, never the value sent: a request may carry an exchange's API secret
        errors = [
            {"loc": e.get("loc", []), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(QuotewiseError)
    async def _refused(_: Request, exc: QuotewiseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/health", response_model=Health)
    async def health(who: Principal = viewer) -> dict[str, Any]:
        return {
            "ok": True,
            "pid": os.getpid(),
            "db": store.url,
            "role": who.role,
            **engine.health(),
        }

    @app.get("/makers", response_model=list[MakerSummary])
    async def list_makers(_: Principal = viewer) -> list[dict[str, Any]]:
        return engine.list_makers()

    @app.post("/makers", response_model=Started)
    async def start_maker(spec: MakerSpec, who: Principal = trader) -> dict[str, str]:
        return {"id": await engine.start_maker(spec, actor=who.name)}

    @app.get("/makers/{maker_id}", response_model=MakerStatus)
    async def status(maker_id: str, _: Principal = viewer) -> dict[str, Any]:
        return engine.status(maker_id)

    @app.delete("/makers/{maker_id}", response_model=MakerStatus)
    async def stop_maker(maker_id: str, who: Principal = trader) -> dict[str, Any]:
        owner_or_admin(who, maker_id)
        return await engine.stop_maker(maker_id, actor=who.name)

    @app.get("/makers/{maker_id}/config")
    async def get_config(maker_id: str, _: Principal = viewer) -> dict[str, Any]:
        return await engine.configure(maker_id, {})

    @app.patch("/makers/{maker_id}/config")
    async def set_config(maker_id: str, body: ConfigChange, who: Principal = trader) -> dict:
        owner_or_admin(who, maker_id)
        return await engine.configure(maker_id, body.changes, actor=who.name)

    @app.get("/makers/{maker_id}/fills")
    async def fills(maker_id: str, _: Principal = viewer) -> list[dict[str, Any]]:
        return engine.fills(maker_id)

    @app.get("/audit")
    async def audit(maker_id: str | None = None, _: Principal = viewer) -> list[dict[str, Any]]:
        return store.audit_rows(maker_id)

    # -- the public surface (docs/api.md): the names the systems Quotewise replaces use --------------
    @app.post("/maker/start", response_model=Started)
    async def maker_start(body: dict[str, Any], who: Principal = trader) -> dict[str, str]:
        """Start a maker from ``mm start``'s arguments by name (flags with ``-`` as ``_``)."""
        try:
            spec = MakerSpec.from_flags(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        return {"id": await engine.start_maker(spec, actor=who.name)}

    @app.post("/maker/stop", response_model=MakerStatus)
    async def maker_stop(body: MakerId, who: Principal = trader) -> dict[str, Any]:
        owner_or_admin(who, body.id)
        return await engine.stop_maker(body.id, actor=who.name)

    @app.get("/maker/status", response_model=MakerStatus | list[MakerStatus])
    async def maker_status(id: str | None = None, _: Principal = viewer) -> Any:
        """One maker's status (``?id=``), or every maker's."""
        if id is not None:
            return engine.status(id)
        return engine.statuses([m["id"] for m in engine.list_makers()])

    @app.get("/maker/active", response_model=list[MakerSummary])
    async def maker_active(_: Principal = viewer) -> list[dict[str, Any]]:
        """The makers running now."""
        return [m for m in engine.list_makers() if m["status"] == "running"]

    @app.get("/maker/performance", response_model=PerformanceReport)
    async def maker_performance(id: str | None = None, _: Principal = viewer) -> dict[str, Any]:
        """Per maker (``?id=`` for one) and in total: P&L, spread capture, inventory, fees, fills,
        volume, fill rate (docs/live.md)."""
        ids = [id] if id is not None else [m["id"] for m in engine.list_makers()]
        makers = engine.performances(ids)
        money = ("pnl", "spread_capture", "inventory", "fees")
        total = {k: math.fsum(m[k] or 0.0 for m in makers) for k in money}
        total["fills"] = sum(m["fills"] for m in makers)
        currencies = sorted({m["currency"] for m in makers})
        return {"makers": makers, "total": total if len(currencies) <= 1 else None, "currencies": currencies}

    @app.get("/risk/alerts", response_model=list[RiskAlert])
    async def risk_alerts(
        id: str | None = None, since: int = 0, _: Principal = viewer
    ) -> list[dict[str, Any]]:
        """The risk engine's decisions, newest first (``?id=`` one maker, ``?since=`` ns)."""
        return engine.risk_alerts(id, since)

    @app.post("/maker/{maker_id}/halt", response_model=MakerStatus)
    async def maker_halt(maker_id: str, flatten: bool = False, who: Principal = trader) -> dict[str, Any]:
        """Cancel everything and stop quoting; ``flatten=true`` also closes the position."""
        owner_or_admin(who, maker_id)
        return await engine.halt(maker_id, flatten, actor=who.name)

    @app.post("/maker/{maker_id}/resume", response_model=MakerStatus)
    async def maker_resume(maker_id: str, who: Principal = trader) -> dict[str, Any]:
        owner_or_admin(who, maker_id)
        return await engine.resume_quoting(maker_id, actor=who.name)

    @app.patch("/maker/{maker_id}/config")
    async def maker_config(maker_id: str, changes: dict[str, Any], who: Principal = trader) -> dict:
        """Change settings by flag name (``{"spread": "3ticks", "max_pos": 10}``)."""
        owner_or_admin(who, maker_id)
        return await engine.configure(maker_id, changes, actor=who.name)

    @app.get("/books")
    async def books(_: Principal = viewer) -> list[dict[str, Any]]:
        """Every book: its makers and limits."""
        return engine.books()

    @app.get("/books/{name}")
    async def book(name: str, _: Principal = viewer) -> dict[str, Any]:
        """A book's makers, totals in its quote currency (P&L, net and gross exposure, shares), limits
        and the limits it is beyond now."""
        return engine.book(name)

    @app.put("/books/{name}/limits")
    async def book_limits(name: str, body: BookLimits, who: Principal = admin) -> dict[str, Any]:
        """Set a book's limits (an admin's: a breach halts every maker of the book, whoever started it)."""
        return await engine.set_book_limits(name, body.model_dump(), actor=who.name)

    @app.post("/engine/stop")
    async def stop_engine(request: Request, who: Principal = admin) -> dict[str, bool]:
        store.audit(who.name, "engine_stop", None, {})
        server = getattr(request.app.state, "server", None)
        if server is not None:
            server.should_exit = True
        return {"stopping": True}

    from quotewise.live.mcp_server import mount_http  # half a second to import: only with an engine

    mount_http(app)  # /mcp: the same API for AI agents, each request with its own key (docs/mcp.md)
    return app


def _add_docs(app: FastAPI, viewer: Any) -> None:
    """The API's description (``/openapi.json``, with its security scheme) and its page (``/docs``,
    rendered here: no script from a CDN, so it works offline), a key required."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Principal = viewer) -> JSONResponse:
        return JSONResponse(with_security(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs(_: Principal = viewer) -> HTMLResponse:
        return HTMLResponse(docs_page(with_security(app.openapi())))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listen_address(
    listen: str | None, tls_cert: str | None, tls_key: str | None, insecure: bool
) -> tuple[str, int]:
    """``(host, port)`` to listen on. Anywhere but this machine only over TLS (a certificate and its
    key) or with ``insecure`` said out loud: the API carries keys and starts real orders."""
    if listen is None:
        return HOST, 0
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit():
        raise ConfigError(f"--listen {listen!r}: give HOST:PORT, e.g. 0.0.0.0:8443")
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    local = host in (HOST, "localhost", "::1")
    if not local and tls_cert is None and not insecure:
        raise ConfigError(
            f"--listen {listen}: another machine could reach the engine, so it needs TLS (--tls-cert FILE "
            "--tls-key FILE) or --insecure"
        )
    for path in (tls_cert, tls_key):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{path}: no such file")
    return host, int(port_text)


def serve(
    db: str | None = None,
    port: int = 0,
    keep_warm: str = KEEP_WARM,
    listen: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    insecure: bool = False,
    public_metrics: bool = False,
    workers: int = 1,
) -> None:
    """Run the engine and its API until SIGTERM/SIGINT or ``POST /engine/stop``. Its log (and
    uvicorn's warnings) go to :func:`quotewise.live.paths.log_path` and stderr."""
    log = logs.configure(paths.log_path())
    keep_warm_s = parse_duration(keep_warm, "keep_warm") / 1e9 or None
    host, listen_port = listen_address(listen, tls_cert, tls_key, insecure)
    url = db_url(db) if db else default_db_url()
    check_workers(workers, url)
    store = Store(url)
    port = listen_port or port or free_port()
    scheme = "https" if tls_cert else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    info = {
        "pid": os.getpid(),
        "port": port,
        "url": f"{scheme}://{shown}:{port}",
        "tls_cert": str(Path(tls_cert).resolve()) if tls_cert else None,
        "db": url,
        "started": time.time(),
        "keep_warm": keep_warm,
        "workers": workers,
        "log": str(log),
    }
    where = store.engine.url.render_as_string(hide_password=True)
    logger.info(
        "engine starting",
        extra=logs.kv(
            pid=info["pid"], url=info["url"], listen=host, db=where, keep_warm=keep_warm, workers=workers
        ),
    )
    app = create_app(store, paths.ensure_token(), info, keep_warm_s, public_metrics, workers, log)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=None,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )
    server = uvicorn.Server(config)
    app.state.server = server
    try:
        server.run()
    finally:
        paths.clear_engine_info(os.getpid())
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the Quotewise live engine and its API.")
    ap.add_argument("--db", help="database URL or SQLite file (default: under the user data directory)")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument(
        "--listen", help="HOST:PORT to listen on instead (elsewhere than 127.0.0.1: TLS or --insecure)"
    )
    ap.add_argument("--tls-cert", help="TLS certificate (PEM)")
    ap.add_argument("--tls-key", help="TLS private key (PEM)")
    ap.add_argument("--insecure", action="store_true", help="listen beyond this machine without TLS")
    ap.add_argument("--public-metrics", action="store_true", help="/metrics without an API key")
    ap.add_argument(
        "--keep-warm",
        default=KEEP_WARM,
        help=f"idle makers rehearse their decision this often (0: off; default {KEEP_WARM})",
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="run the makers in this many processes (default 1: this one)"
    )
    args = ap.parse_args()
    try:
        serve(
            args.db,
            args.port,
            args.keep_warm,
            args.listen,
            args.tls_cert,
            args.tls_key,
            args.insecure,
            args.public_metrics,
            args.workers,
        )
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
