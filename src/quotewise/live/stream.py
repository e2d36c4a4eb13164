"""``/stream``: the engine's makers pushed over a websocket, about four times a second (the dashboard's
feed, :mod:`quotewise.live.dashboard`; the format is in docs/dashboard.md).

A browser cannot set headers on a websocket, so the key comes as the first message,
``{"key": "..."}``; an unknown or revoked key (or none within 5 s) is closed with code 4401. Then each
push holds one message per running maker with the fields that changed since the last push to this
client (a maker that stopped gets one last message with its new status), the top levels of its book
each side, and the risk events and audit rows stored since the last push. ``{"maker": ID}`` focuses the
book on one maker (``{"maker": null}``: every maker's again). Everything is read at push time from the
makers' state and the store: nothing is added to a maker's own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select

from quotewise.live.store import audit_log, risk_events

if TYPE_CHECKING:
    from quotewise.live.engine import LiveEngine
    from quotewise.live.maker import Maker
    from quotewise.live.store import Store

PUSH_EVERY_S = 0.25
AUTH_WAIT_S = 5.0
BAD_KEY = 4401  # the websocket close code for a missing, unknown or revoked key (HTTP's 401)
BOOK_LEVELS = 10
HISTORY_ROWS = 200  # audit rows and risk events a new client gets from before it connected
ROWS_PER_PUSH = 500  # at most this many new rows of each table per push (the rest come next push)
BID, ASK = 1, -1


def _clean(value: Any) -> Any:
    """JSON a browser parses: NaN and infinities (a risk event's absent limit) as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def risk_light(status: str, halted: Any, risk: dict[str, Any]) -> str:
    """The maker's state as one word for a light: ``ok`` (green), ``reduce_only``, ``paused``,
    ``stale`` or ``finishing`` (amber), ``halted`` or ``failed`` (red), else the status (grey)."""
    if status == "failed":
        return "failed"
    if halted or risk.get("halted"):
        return "halted"
    if status == "finishing":
        return "finishing"
    if status != "running":
        return status
    if risk.get("stale"):
        return "stale"
    if risk.get("paused"):
        return "paused"
    if risk.get("reduce_only"):
        return "reduce_only"
    return "ok"


def book_levels(maker: Maker, n: int = BOOK_LEVELS) -> dict[str, list[list[float]]]:
    """The top ``n`` levels of each side, best first, as ``[price, size]`` in instrument units."""
    inst, out = maker.inst, {}
    for name, side in (("bids", BID), ("asks", ASK)):
        prices, sizes = maker.book.levels(side, n)
        out[name] = [[inst.px(int(p)), inst.qty(int(s))] for p, s in zip(prices, sizes, strict=True)]
    return out


def snapshot(maker: Maker, with_book: bool) -> dict[str, Any]:
    """What a client sees of one maker now (before diffing)."""
    status = maker.status()
    guard = maker.guard
    risk = dict(status["risk"])
    risk["reduce_only"] = bool(guard is not None and guard.reduce_only)
    risk["paused"] = bool(guard is not None and guard.paused_until is not None)
    risk["stale"] = bool(guard is not None and guard.stale)
    state = status["state"]
    out = {
        "status": state,
        "error": status["error"],
        "position": status["position"],
        "pnl": status["pnl"],
        "currency": status["currency"],
        "fills": status["fills"],
        "quotes": [{k: q[k] for k in ("side", "price", "size", "status")} for q in status["quotes"]],
        "best_bid": status["best_bid"],
        "best_ask": status["best_ask"],
        "halted": status["halted"],
        "risk": risk,
        "light": risk_light(state, status["halted"], risk),
    }
    if with_book:
        out["book"] = book_levels(maker)
    return _clean(out)


class _Rows:
    """New rows of one store table since the last read (by id), grouped by maker."""

    def __init__(self, store: Store, table: Any, history: int) -> None:
        self.store, self.table = store, table
        with store.engine.connect() as conn:
            self.last = max(0, (conn.execute(select(func.max(table.c.id))).scalar() or 0) - history)

    def new(self) -> dict[str | None, list[dict[str, Any]]]:
        query = select(self.table).where(self.table.c.id > self.last).order_by(self.table.c.id)
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query.limit(ROWS_PER_PUSH)).all()]
        out: dict[str | None, list[dict[str, Any]]] = {}
        for row in rows:
            self.last = row["id"]
            out.setdefault(row.pop("maker_id"), []).append(row)
        return out


class _Client:
    """One websocket's view: what it was last sent of each maker, and its focus."""

    def __init__(self, engine: LiveEngine) -> None:
        self.engine = engine
        self.store = engine.store
        self.sent: dict[str, dict[str, Any]] = {}
        self.markets: dict[str, str] = {}
        self.focus: str | None = None
        self.audit = _Rows(self.store, audit_log, HISTORY_ROWS)
        self.risk = _Rows(self.store, risk_events, HISTORY_ROWS)

    def _market(self, maker_id: str) -> str:
        if maker_id not in self.markets:
            rec = self.store.maker(maker_id)
            self.markets[maker_id] = rec.market if rec is not None else ""
        return self.markets[maker_id]

    def push(self) -> list[dict[str, Any]]:
        """This push's messages: one per running maker (and per maker that just stopped or has new
        rows), then one for the engine's own audit rows when there are any."""
        now = time.time()
        audit, risk = self.audit.new(), self.risk.new()
        messages: dict[str, dict[str, Any]] = {}
        wanted = {}  # maker id -> with its book
        for maker_id, (state, _) in self.engine.live_states().items():
            before = self.sent.get(maker_id)
            if state != "running" and (before is None or before.get("status") == state):
                continue  # not running, and the client already knows
            wanted[maker_id] = state == "running" and self.focus in (None, maker_id)
        for maker_id, now_state in self.engine.snapshots(wanted).items():
            before = self.sent.get(maker_id)
            if before is None:
                changed = {"market": self._market(maker_id), **now_state}
            else:
                changed = {k: v for k, v in now_state.items() if before.get(k) != v}
            self.sent[maker_id] = {**(before or {}), **now_state}
            messages[maker_id] = {"type": "maker", "id": maker_id, "ts": now, **changed}
        for maker_id in (set(audit) | set(risk)) - {None}:
            message = messages.setdefault(maker_id, {"type": "maker", "id": maker_id, "ts": now})
            if maker_id in audit:
                message["audit"] = _clean(audit[maker_id])
            if maker_id in risk:
                message["risk_events"] = _clean(risk[maker_id])
        out = list(messages.values())
        if None in audit:
            out.append({"type": "engine", "ts": now, "audit": _clean(audit[None])})
        return out


def add_stream_route(app: FastAPI, engine: LiveEngine) -> None:
    """``/stream`` on ``app`` (keys checked with ``app.state.keys``)."""

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        try:
            first = await asyncio.wait_for(ws.receive_text(), AUTH_WAIT_S)
            key = json.loads(first).get("key")
        except (TimeoutError, ValueError, AttributeError, KeyError):
            await ws.close(BAD_KEY, 'send {"key": KEY} first')
            return
        except WebSocketDisconnect:
            return
        who = app.state.keys.principal(key) if isinstance(key, str) else None
        if who is None:
            await ws.close(BAD_KEY, "unknown or revoked API key")
            return
        client = _Client(engine)
        await ws.send_text(
            json.dumps({"type": "hello", "name": who.name, "role": who.role, "every_s": PUSH_EVERY_S})
        )
        reader = asyncio.create_task(_read(ws, client))
        try:
            while not reader.done():
                for message in client.push():
                    await ws.send_text(json.dumps(message, separators=(",", ":"), default=str))
                await asyncio.wait({reader}, timeout=PUSH_EVERY_S)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-send
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def _read(ws: WebSocket, client: _Client) -> None:
    """The client's messages after its key: ``{"maker": ID}`` or ``{"maker": null}``."""
    while True:
        try:
            text = await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            return
        except KeyError:  # bytes, not text
            continue
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, dict) and "maker" in message:
            focus = message["maker"]
            client.focus = focus if isinstance(focus, str) else None
