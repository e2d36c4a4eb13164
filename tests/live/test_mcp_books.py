"""Books through the MCP server (the SDK's own client over streamable HTTP, against a real engine):
two paper makers started in one book by an agent; list_books and get_book answer exactly what the
REST routes do; an unknown book is an error naming it; only an admin key sets a book's limits (a
viewer's and a trader's are the engine's 403), and the admin's limits are the book's from then on."""

from __future__ import annotations

import time

import anyio
import httpx
import test_mcp
from test_mcp import http_session, ok, refused

BOOK = "mcpbook"
PAPER = {"data": "synthetic:400000", "speed": 20, "spread": 2, "settings": {"book": BOOK}}
WAIT_S = 30.0
engine = test_mcp.engine  # its fixture: an engine with /mcp, keys ann (viewer), bob (trader)


def rest(engine, path: str) -> object:
    """A GET on the engine's API with its own token, as ``mm`` sends it."""
    r = httpx.get(f"{engine.url}{path}", headers={"Authorization": f"Bearer {engine.token}"}, timeout=WAIT_S)
    r.raise_for_status()
    return r.json()


def test_book_tools_answer_what_the_api_does_and_only_an_admin_sets_limits(engine):
    async def main() -> None:
        async with http_session(engine, engine.token) as admin:
            tools = {t.name: t for t in (await admin.list_tools()).tools}
            assert {"list_books", "get_book", "set_book_limits"} <= set(tools)
            limits_schema = tools["set_book_limits"].input_schema["properties"]
            assert {"name", "max_loss", "max_gross", "max_net", "flatten"} <= set(limits_schema)
            assert tools["set_book_limits"].annotations.destructive_hint
            assert tools["get_book"].annotations.read_only_hint

            ids = [(await ok(admin, "start_maker", name=n, **PAPER))["id"] for n in ("bk1", "bk2")]
            assert ids == ["bk1", "bk2"]

            async def both_priced() -> bool:
                lines = (await ok(admin, "get_book", name=BOOK))["makers"]
                return len(lines) == 2 and all(line["position"] != 0 for line in lines)

            deadline = time.monotonic() + WAIT_S
            while not await both_priced():  # each holds a position: exposures and P&L that are not 0
                assert time.monotonic() < deadline, "the book's makers took no position"
                await anyio.sleep(0.2)
            for maker in ids:  # stopped: their figures hold still, to compare
                await ok(admin, "stop_maker", id=maker)

            listed = await ok(admin, "list_books")
            assert listed == rest(engine, "/books")
            assert {"book": BOOK, "makers": ids, "limits": None} in listed
            book = await ok(admin, "get_book", name=BOOK)
            assert book == rest(engine, f"/books/{BOOK}")
            assert [m["id"] for m in book["makers"]] == ids and book["totals"]["gross_exposure"] > 0

            missing = await refused(admin, "get_book", name="nosuchbook")
            assert "no book 'nosuchbook'" in missing and "HTTP 404" in missing
            slashed = await refused(admin, "get_book", name="a/b")
            assert "no book 'a/b'" in slashed

            set_ = await ok(admin, "set_book_limits", name=BOOK, max_loss=1e9, max_net=2e9)
            assert set_["limits"] == {
                "flatten": False,
                "action": "halt",
                "pause_for": None,
                "max_loss": 1e9,
                "max_gross": None,
                "max_net": 2e9,
                "var_1m": None,
            }
            assert set_ == rest(engine, f"/books/{BOOK}")
            assert "HTTP 422" in await refused(admin, "set_book_limits", name=BOOK, max_gross=-1)
            assert "at least one limit" in await refused(admin, "set_book_limits", name=BOOK)

        async with http_session(engine, engine.keys["ann"]) as viewer:
            assert await ok(viewer, "get_book", name=BOOK) == rest(engine, f"/books/{BOOK}")  # it reads
            no = await refused(viewer, "set_book_limits", name=BOOK, max_gross=1)
            assert "HTTP 403" in no and "ann is a viewer: this needs the admin role" in no
        async with http_session(engine, engine.keys["bob"]) as trader:
            no = await refused(trader, "set_book_limits", name=BOOK, max_gross=1)
            assert "HTTP 403" in no and "bob is a trader: this needs the admin role" in no
        # the refusals changed nothing
        assert rest(engine, f"/books/{BOOK}")["limits"]["max_gross"] is None

    anyio.run(main)
