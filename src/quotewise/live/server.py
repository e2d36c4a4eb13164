"""The engine's local HTTP API (FastAPI), bound to 127.0.0.1 and protected by a bearer token.

``python -m quotewise.live.server --db URL --port N`` runs the engine and the API in one event loop;
``mm engine start`` starts it in the background. SIGTERM (or ``POST /engine/stop``) shuts down
gracefully: every maker cancels its orders first.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from quotewise import logs
from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live import KEEP_WARM, paths
from quotewise.live.engine import LiveEngine, MakerSpec, UnknownMaker
from quotewise.live.store import Store, db_url, default_db_url
from quotewise.parsing import parse_duration

HOST = "127.0.0.1"
logger = logging.getLogger("quotewise.live.server")  # not __name__: run with -m, that is __main__


class ConfigChange(BaseModel):
    changes: dict[str, Any]


def create_app(
    store: Store, token: str, info: dict[str, Any] | None = None, keep_warm_s: float | None = None
) -> FastAPI:
    """The API over a new engine on ``store``; ``info`` is written to the engine file once it runs."""
    engine = LiveEngine(store, keep_warm_s=keep_warm_s)

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

    def authorized(authorization: str | None = Header(default=None)) -> None:
        expected = f"Bearer {token}"
        if authorization is None or not secrets.compare_digest(authorization, expected):
            raise HTTPException(401, "missing or wrong API token (the engine's token is in the user config)")

    # FastAPI's own /docs, /redoc and /openapi.json would answer without the token: served here instead,
    # behind the same dependency as every route
    app = FastAPI(
        title="Quotewise engine",
        lifespan=lifespan,
        dependencies=[Depends(authorized)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    _add_docs(app)

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

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid(), "makers": len(engine.makers), "db": store.url}

    @app.get("/makers")
    async def list_makers() -> list[dict[str, Any]]:
        return engine.list_makers()

    @app.post("/makers")
    async def start_maker(spec: MakerSpec, x_actor: str = Header(default="api")) -> dict[str, str]:
        return {"id": await engine.start_maker(spec, actor=x_actor)}

    @app.get("/makers/{maker_id}")
    async def status(maker_id: str) -> dict[str, Any]:
        return engine.status(maker_id)

    @app.delete("/makers/{maker_id}")
    async def stop_maker(maker_id: str, x_actor: str = Header(default="api")) -> dict[str, Any]:
        return await engine.stop_maker(maker_id, actor=x_actor)

    @app.get("/makers/{maker_id}/config")
    async def get_config(maker_id: str) -> dict[str, Any]:
        return await engine.configure(maker_id, {})

    @app.patch("/makers/{maker_id}/config")
    async def set_config(maker_id: str, body: ConfigChange, x_actor: str = Header(default="api")) -> dict:
        return await engine.configure(maker_id, body.changes, actor=x_actor)

    @app.get("/makers/{maker_id}/fills")
    async def fills(maker_id: str) -> list[dict[str, Any]]:
        return engine.fills(maker_id)

    @app.get("/audit")
    async def audit(maker_id: str | None = None) -> list[dict[str, Any]]:
        return store.audit_rows(maker_id)

    @app.post("/engine/stop")
    async def stop_engine(request: Request, x_actor: str = Header(default="api")) -> dict[str, bool]:
        store.audit(x_actor, "engine_stop", None, {})
        server = getattr(request.app.state, "server", None)
        if server is not None:
            server.should_exit = True
        return {"stopping": True}

    return app


def _add_docs(app: FastAPI) -> None:
    """The API's description (``/openapi.json``) and its pages (``/docs``, ``/redoc``), token required."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def serve(db: str | None = None, port: int = 0, keep_warm: str = KEEP_WARM) -> None:
    """Run the engine and its API until SIGTERM/SIGINT or ``POST /engine/stop``. Its log (and
    uvicorn's warnings) go to :func:`quotewise.live.paths.log_path` and stderr."""
    log = logs.configure(paths.log_path())
    keep_warm_s = parse_duration(keep_warm, "keep_warm") / 1e9 or None
    url = db_url(db) if db else default_db_url()
    store = Store(url)
    port = port or free_port()
    info = {
        "pid": os.getpid(),
        "port": port,
        "db": url,
        "started": time.time(),
        "keep_warm": keep_warm,
        "log": str(log),
    }
    where = store.engine.url.render_as_string(hide_password=True)
    logger.info("engine starting", extra=logs.kv(pid=info["pid"], port=port, db=where, keep_warm=keep_warm))
    app = create_app(store, paths.ensure_token(), info, keep_warm_s)
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    app.state.server = server
    try:
        server.run()
    finally:
        paths.clear_engine_info(os.getpid())
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the Quotewise live engine and its local API.")
    ap.add_argument("--db", help="database URL or SQLite file (default: under the user data directory)")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    ap.add_argument(
        "--keep-warm",
        default=KEEP_WARM,
        help=f"idle makers rehearse their decision this often (0: off; default {KEEP_WARM})",
    )
    args = ap.parse_args()
    serve(args.db, args.port, args.keep_warm)


if __name__ == "__main__":
    main()
