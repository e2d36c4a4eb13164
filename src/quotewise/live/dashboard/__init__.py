"""The engine's dashboard: one page (``GET /``) and its script and style (``/dashboard/...``), served
from the package without a key. The page holds no data: it asks for an API key, keeps it in the tab's
sessionStorage, reads the API with ``Authorization: Bearer KEY`` and ``/stream`` with the key as the
first message (docs/dashboard.md). Nothing is fetched from anywhere else.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEADERS = {
    # the page and its script only from here, the API and /stream only on this origin, no frames
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return files(__name__).joinpath(name).read_bytes()


def add_dashboard_routes(app: FastAPI) -> None:
    """``GET /`` (the page) and ``GET /dashboard/{app.js,style.css}`` on ``app``, without a key."""
    page = _read("index.html")
    assets = {name: (_read(name), kind) for name, kind in FILES.items()}

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)

    @app.get("/dashboard/{name}", include_in_schema=False)
    async def dashboard_file(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no dashboard file {name!r}")
        body, kind = assets[name]
        return Response(body, media_type=kind, headers=HEADERS)
