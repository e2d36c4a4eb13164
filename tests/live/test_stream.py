"""``/stream`` in process: a viewer's key, sent as the first message, gets one message per running
paper maker about four times a second (quotes, fills, position, P&L, risk, its book in instrument
units, new audit rows); focusing on one maker keeps the book to it; a bad key is closed with 4401."""

from __future__ import annotations

import itertools
import time
import warnings

import pytest
from starlette.websockets import WebSocketDisconnect

from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url
from quotewise.live.stream import BAD_KEY, add_stream_route

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
START = {"data": "synthetic:3000000", "speed": 20, "spread": "1tick", "interval": "100ms"}


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "stream.db")))
    yield s
    s.close()


def engine_api(store: Store, workers: int = 1) -> TestClient:
    app = create_app(store, TOKEN, workers=workers)
    if not any(getattr(r, "path", None) == "/stream" for r in app.routes):  # until server.py adds it
        add_stream_route(app, app.state.engine)
    return TestClient(app, headers=AUTH)


def messages_until(ws, check, timeout: float = 20.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while not check(got):
        assert time.monotonic() < deadline, f"timed out; got {got[-3:]}"
        got.append(ws.receive_json())
    return got


@pytest.mark.parametrize("workers", [1, 2], ids=["one-loop", "two-workers"])
def test_a_viewer_gets_each_running_makers_changes_and_book(store, workers):
    viewer = store.add_api_key("ann", "viewer")
    with engine_api(store, workers) as api:
        a = api.post("/maker/start", json={**START, "name": "a"}).json()["id"]
        b = api.post("/maker/start", json={**START, "name": "b"}).json()["id"]
        with api.websocket_connect("/stream") as ws:
            ws.send_json({"key": viewer})
            hello = ws.receive_json()
            assert hello == {"type": "hello", "name": "ann", "role": "viewer", "every_s": 0.25}
            got = messages_until(
                ws,
                lambda g: (
                    {m["id"] for m in g if m.get("fills")} >= {a, b}
                    and any(m["id"] == a and m.get("book", {}).get("asks") for m in g)
                    # pushes enough to time below (with workers, a had filled by its first push)
                    and sum(m.get("id") == a for m in g) >= 3
                ),
            )
            first = {m["id"]: m for m in reversed(got) if m["type"] == "maker"}
            for maker_id in (a, b):
                m = first[maker_id]
                assert m["market"] == "SYNTH" and m["status"] == "running" and m["light"] == "ok"
                assert set(m["risk"]) >= {"enabled", "blocked", "halted", "reduce_only", "paused"}
            books = [m["book"] for m in got if m.get("id") == a and m.get("book", {}).get("bids")]
            bids, asks = books[-1]["bids"], books[-1]["asks"]
            assert 0 < len(bids) <= 10 and 0 < len(asks) <= 10
            assert all(90 < p < 110 and s > 0 for p, s in bids + asks)  # synthetic: ~100, tick 0.01
            assert bids[0][0] < asks[0][0] and [p for p, _ in bids] == sorted(
                (p for p, _ in bids), reverse=True
            )
            starts = [r for m in got for r in m.get("audit", []) if r["action"] == "start"]
            assert {r["details"]["name"] for r in starts} == {a, b}
            pushes = [m["ts"] for m in got if m.get("id") == a]
            # about four pushes a second: never two within 0.15 s (an upper bound would be the CI's load)
            assert len(pushes) >= 2 and min(t2 - t1 for t1, t2 in itertools.pairwise(pushes)) > 0.15

            ws.send_json({"maker": b})  # the book of b only, from now on
            later = messages_until(ws, lambda g: sum(m.get("id") == a for m in g) >= 6)
            assert not any("book" in m for m in [m for m in later if m.get("id") == a][-3:])
            assert any("book" in m for m in later if m.get("id") == b)

            api.post("/maker/stop", json={"id": a})
            last = messages_until(
                ws, lambda g: any(m.get("id") == a and m.get("status") == "stopped" for m in g)
            )
            stopped = next(m for m in last if m.get("id") == a and m.get("status") == "stopped")
            assert stopped["light"] == "stopped"
        api.post("/maker/stop", json={"id": b})


@pytest.mark.parametrize("first", [{"key": "qwk_nonsense"}, {"nokey": 1}, "not json"])
def test_a_bad_key_is_closed_with_4401(store, first):
    with engine_api(store) as api, api.websocket_connect("/stream") as ws:
        if isinstance(first, str):
            ws.send_text(first)
        else:
            ws.send_json(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == BAD_KEY


def test_a_revoked_key_is_closed_with_4401(store):
    key = store.add_api_key("gone", "viewer")
    store.revoke_api_key("gone")
    with engine_api(store) as api, api.websocket_connect("/stream") as ws:
        ws.send_json({"key": key})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == BAD_KEY


def test_no_key_within_the_wait_is_closed_with_4401(store, monkeypatch):
    monkeypatch.setattr("quotewise.live.stream.AUTH_WAIT_S", 0.2)
    with engine_api(store) as api, api.websocket_connect("/stream") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == BAD_KEY


def test_risk_events_come_with_the_makers_message_and_its_light(store):
    """A tight position limit: the risk engine's reduce-only events reach the client as they are stored."""
    with engine_api(store) as api:
        maker_id = api.post("/maker/start", json={**START, "max_pos": 1}).json()["id"]
        with api.websocket_connect("/stream") as ws:
            ws.send_json({"key": TOKEN})
            got = messages_until(ws, lambda g: any(m.get("risk_events") for m in g))
        events = [e for m in got if m.get("id") == maker_id for e in m.get("risk_events", [])]
        assert events and {"ts", "rule", "action", "value", "limit", "detail"} <= set(events[0])
        stored = store.risk_events(maker_id)
        assert [e["id"] for e in events] == [e["id"] for e in stored[: len(events)]]
        lights = {m["light"] for m in got if "light" in m}
        assert lights <= {"ok", "reduce_only", "paused", "halted"}
