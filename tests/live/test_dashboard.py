"""The dashboard's files are served from the package without a key (they hold no data), with a strict
Content-Security-Policy, and nothing in them is fetched from elsewhere; the API behind them still
needs a key. (The page in a real browser: test_dashboard_browser.py.)"""

from __future__ import annotations

import re
import warnings

from quotewise.live.dashboard import add_dashboard_routes
from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


def test_the_page_and_its_files_need_no_key_and_load_nothing_from_elsewhere(tmp_path):
    store = Store(db_url(str(tmp_path / "d.db")))
    app = create_app(store, "tok")
    if "/" not in {getattr(r, "path", None) for r in app.routes}:
        add_dashboard_routes(app)
    with TestClient(app) as api:
        page = api.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
            got = api.get(f"/dashboard/{name}")
            assert got.status_code == 200 and got.headers["content-type"].startswith(kind)
            assert not re.search(r"https?://", got.text), f"{name} refers to another site"
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
        assert api.get("/dashboard/__init__.py").status_code == 404
        assert api.get("/dashboard/..%2F..%2Fstore.py").status_code == 404
        assert api.get("/maker/status").status_code == 401  # the data still needs a key
    store.close()
