"""The MCP server through the MCP SDK's own client, against a real engine (in process, on a free
port): over stdio (``python -m quotewise.live.mcp_server``, the local token) a paper maker is
started, watched, configured and stopped, a bad setting is refused with the engine's reason and both
resources read; over streamable HTTP at ``/mcp`` on the engine's app the caller's key is the one its
tool calls use."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from livekit import served
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from quotewise.live import paths
from quotewise.live.mcp_server import bearer, mount_http
from quotewise.live.server import create_app, free_port
from quotewise.live.store import Store, db_url
from quotewise.settings import DEFAULT_STRATEGY

TOOLS = {
    "list_makers",
    "maker_status",
    "start_maker",
    "stop_maker",
    "configure_maker",
    "halt",
    "backtest",
    "quote",
    "list_books",
    "get_book",
    "set_book_limits",
}
WAIT_S = 30.0
KEYS = {"ann": "viewer", "bob": "trader", "cat": "trader"}  # name: role


class Engine:
    def __init__(self, home, port: int, token: str, keys: dict[str, str]) -> None:
        self.home, self.port, self.token, self.keys = home, port, token, keys
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    """An engine with the MCP endpoint mounted, in a temporary QUOTEWISE_HOME whose engine file and
    token a stdio server finds as ``mm`` would."""
    home = tmp_path_factory.mktemp("mcp-home")
    before = os.environ.get("QUOTEWISE_HOME")
    os.environ["QUOTEWISE_HOME"] = str(home)
    store = Store(db_url(str(home / "state.db")))
    port = free_port()
    token = paths.ensure_token()
    keys = {name: store.add_api_key(name, role) for name, role in KEYS.items()}
    app = create_app(store, token, {"pid": os.getpid(), "port": port, "db": store.url})
    mount_http(app)
    try:
        with served(app, port, WAIT_S):
            yield Engine(home, port, token, keys)
    finally:
        store.close()
        if before is None:
            os.environ.pop("QUOTEWISE_HOME", None)
        else:
            os.environ["QUOTEWISE_HOME"] = before


def stdio_params(engine: Engine, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "quotewise.live.mcp_server"],
        env={"QUOTEWISE_HOME": str(engine.home), **env},
    )


@contextlib.asynccontextmanager
async def stdio_session(engine: Engine, **env: str):
    async with stdio_client(stdio_params(engine, **env)) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        yield s


@contextlib.asynccontextmanager
async def http_session(engine: Engine, key: str | None):
    import httpx2

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{engine.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as s,
    ):
        await s.initialize()
        yield s


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def ok(session: ClientSession, tool: str, **args: Any) -> Any:
    """A tool's answer (its JSON), asserting it is not an error."""
    result = await session.call_tool(tool, args)
    assert not result.is_error, f"{tool} failed: {text(result)}"
    if result.structured_content is not None:
        content = result.structured_content
        return content["result"] if set(content) == {"result"} else content
    return json.loads(text(result))


async def refused(session: ClientSession, tool: str, **args: Any) -> str:
    result = await session.call_tool(tool, args)
    assert result.is_error, f"{tool} was not refused: {text(result)}"
    return text(result)


async def wait_for(check, what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.2)


def test_a_paper_maker_through_stdio(engine):
    async def main() -> None:
        async with stdio_session(engine) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.input_schema["type"] == "object" and tool.description, tool.name
            assert {"venue", "data", "speed", "spread", "max_pos", "settings"} <= set(
                tools["start_maker"].input_schema["properties"]
            )
            assert "flatten" in tools["halt"].input_schema["properties"]

            # a bad setting: the engine's reason comes back, and nothing starts
            bad = await refused(
                s, "start_maker", venue="paper", data="synthetic:5000", speed=50, spread="banana"
            )
            assert "spread" in bad and "HTTP 422" in bad
            bad = await refused(s, "start_maker", venue="paper", data="synthetic:5000", settings={"nope": 1})
            assert "nope" in bad and "HTTP 422" in bad
            assert await ok(s, "list_makers") == []

            started = await ok(
                s,
                "start_maker",
                venue="paper",
                data="synthetic:400000",
                speed=20,
                spread="2ticks",
                max_pos=5,
                settings={"interval": "100ms"},
            )
            maker = started["id"]
            assert [m["id"] for m in await ok(s, "list_makers")] == [maker]

            async def decided() -> dict | None:
                status = await ok(s, "maker_status", id=maker)
                return status if status["decisions"] > 0 else None

            status = await wait_for(decided, "the maker to decide")
            assert status["status"] == "running" and status["market"] == "SYNTH"

            config = await ok(s, "configure_maker", id=maker, changes={"spread": "15ticks", "max-pos": 3})
            assert config["params"]["spread"] == "15ticks" and config["version"] == 2
            assert config["risk"]["max_pos"] == 3
            bad = await refused(s, "configure_maker", id=maker, changes={"spread": "banana"})
            assert "spread" in bad and "HTTP 422" in bad
            shown = await ok(s, "configure_maker", id=maker)
            assert shown["params"]["spread"] == "15ticks" and shown["version"] == 2

            resource = await s.read_resource(f"maker://{maker}/status")
            assert json.loads(resource.contents[0].text)["id"] == maker

            missing = await refused(s, "maker_status", id="mm-nosuch")
            assert "no maker 'mm-nosuch'" in missing and "HTTP 404" in missing

            stopped = await ok(s, "stop_maker", id=maker)
            assert "fills" in stopped
            assert (await ok(s, "maker_status", id=maker))["status"] == "stopped"

            # the latest backtest resource, before and after a backtest
            latest = json.loads((await s.read_resource("backtest://latest")).contents[0].text)
            assert latest["summary"] is None
            run = await ok(s, "backtest", data="synthetic", events=20_000, spread=2, max_pos=5)
            assert run["summary"]["events"] > 0 and run["report"].endswith("report.html")
            assert os.path.exists(run["report"])
            latest = json.loads((await s.read_resource("backtest://latest")).contents[0].text)
            assert latest["summary"] == run["summary"] and latest["report"] == run["report"]
            too_many = await refused(s, "backtest", data="synthetic:99999999")
            assert "events" in too_many
            bad = await refused(s, "backtest", events=1000, settings={"nope": 1})
            assert "nope" in bad

    anyio.run(main)


def test_a_wrong_key_over_stdio_is_the_engines_401(engine):
    async def main() -> None:
        async with stdio_session(engine, QW_API_KEY="not-the-key") as s:
            assert "HTTP 401" in await refused(s, "list_makers")
            assert "HTTP 401" in await refused(s, "start_maker", data="synthetic:5000")
            assert "HTTP 401" in await refused(s, "quote", mid=100)

    anyio.run(main)


def test_http_endpoint_uses_each_callers_key(engine):
    async def main() -> None:
        async with http_session(engine, engine.token) as s:
            assert {t.name for t in (await s.list_tools()).tools} == TOOLS
            assert isinstance(await ok(s, "list_makers"), list)
            quoted = await ok(
                s,
                "quote",
                strategy="glft",
                mid=100,
                inventory=3,
                settings={"sigma": 0.5, "gamma": 0.1, "A": 140, "k": 1.5},
            )
            # the numbers of tests/test_cli_quote.py: the same function as mm quote
            assert quoted["bids"] == [{"price": 99.3, "size": 1.0}]
            assert quoted["asks"] == [{"price": 100.62, "size": 1.0}]
            assert "needs sigma" in await refused(s, "quote", strategy="glft", mid=100)
            # no caller's code in the engine's process
            assert "built-in" in await refused(s, "backtest", strategy="mine.py:Mine", events=1000)
        async with http_session(engine, "someone-else") as s:  # the MCP endpoint lets it in ...
            assert "HTTP 401" in await refused(s, "list_makers")  # ... the engine refuses its calls
            assert "HTTP 401" in await refused(s, "backtest", events=1000)

    anyio.run(main)
    # no key at all: the endpoint itself answers 401
    r = httpx.post(f"{engine.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_halt_stops_a_makers_quoting(engine):
    async def main() -> None:
        async with http_session(engine, engine.token) as s:
            maker = (await ok(s, "start_maker", data="synthetic:400000", speed=20, spread=2))["id"]
            try:
                halted = await ok(s, "halt", id=maker, flatten=False)
                assert halted["id"] == maker and halted["halted"] == "halted"
                status = await ok(s, "maker_status", id=maker)
                assert status["halted"] == "halted" and status["status"] == "running"
                assert "HTTP 404" in await refused(s, "halt", id="mm-nosuch")
            finally:
                await s.call_tool("stop_maker", {"id": maker})

    anyio.run(main)


def test_bearer():
    assert bearer({"authorization": "Bearer abc"}) == "abc"
    assert bearer({"authorization": "bearer  abc "}) == "abc"
    assert bearer({"authorization": "Basic abc"}) is None
    assert bearer({"authorization": "Bearer "}) is None
    assert bearer({}) is None and bearer(None) is None


def test_roles_are_the_keys_over_http(engine):
    async def main() -> None:
        async with http_session(engine, engine.keys["ann"]) as viewer:
            assert isinstance(await ok(viewer, "list_makers"), list)
            no = await refused(viewer, "start_maker", data="synthetic:400000", speed=20, spread=2)
            assert "HTTP 403" in no and "ann is a viewer" in no
        async with (
            http_session(engine, engine.keys["bob"]) as bob,
            http_session(engine, engine.keys["cat"]) as cat,
        ):
            maker = (await ok(bob, "start_maker", data="synthetic:400000", speed=20, spread=2))["id"]
            try:
                assert (await ok(cat, "maker_status", id=maker))["id"] == maker  # a trader reads every maker
                no = await refused(cat, "configure_maker", id=maker, changes={"spread": 5})
                assert "HTTP 403" in no and "another key" in no
                assert "HTTP 403" in await refused(cat, "stop_maker", id=maker)
                assert (await ok(bob, "configure_maker", id=maker, changes={"spread": 5}))["version"] == 2
            finally:
                await ok(bob, "stop_maker", id=maker)

    anyio.run(main)


def test_a_viewer_key_over_stdio_cannot_start_a_maker(engine):
    async def main() -> None:
        async with stdio_session(engine, QW_API_KEY=engine.keys["ann"]) as s:
            assert isinstance(await ok(s, "list_makers"), list)
            no = await refused(s, "start_maker", data="synthetic:5000")
            assert "HTTP 403" in no and "viewer" in no

    anyio.run(main)


def test_the_endpoint_on_an_app_run_twice_in_process(tmp_path):
    """Mounted on create_app's app as the engine does; the app entered twice (a new session manager
    each time); JSON-RPC over plain HTTP, any Host name."""
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    store = Store(db_url(str(tmp_path / "app.db")))
    app = create_app(store, "tok")
    mount_http(app)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    try:
        for _ in range(2):
            with TestClient(app) as api:
                assert api.post("/mcp", json=listing, headers=accept).status_code == 401
                r = api.post("/mcp", json=listing, headers={**accept, "Authorization": "Bearer tok"})
                assert r.status_code == 200, r.text
                assert {t["name"] for t in r.json()["result"]["tools"]} == TOOLS
    finally:
        store.close()


def test_stdio_without_an_engine(tmp_path):
    """No engine: the engine's tools say so (and how to start one); quote needs none."""

    async def main() -> None:
        async with stdio_session(Engine(tmp_path, 0, "", {})) as s:
            assert "no engine running" in await refused(s, "list_makers")
            quoted = await ok(s, "quote", mid=100, settings={"spread": "2ticks"})
            assert quoted["strategy"] == DEFAULT_STRATEGY and quoted["bids"] and quoted["asks"]

    anyio.run(main)
