"""The engine's Prometheus metrics: every family present with the makers' own numbers (fills, position,
P&L, decisions as the engine's status shows them), the risk state mapped, and ``/metrics`` behind
the token in the text format."""

from __future__ import annotations

import asyncio
import math
import time
import warnings
from types import SimpleNamespace

import pytest
from fastapi import Depends, Header, HTTPException
from prometheus_client.parser import text_string_to_metric_families
from starlette.exceptions import StarletteDeprecationWarning

from live.test_engine import spec, until
from quotewise.live.engine import LiveEngine
from quotewise.live.metrics import (
    RISK_HALTED,
    RISK_OK,
    RISK_PAUSED,
    RISK_REDUCE_ONLY,
    add_metrics_route,
    metrics_text,
    risk_state,
)
from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url

with warnings.catch_warnings():  # as in test_server: starlette's deprecation of httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# every family the endpoint must keep serving, with its type: a family renamed or dropped fails here
FAMILIES = {
    "quotewise_engine_uptime_seconds": "gauge",
    "quotewise_engine_makers_running": "gauge",
    "quotewise_engine_makers": "gauge",
    "quotewise_engine_loop_busy_ratio": "gauge",
    "quotewise_engine_loop_lag_seconds": "gauge",
    "quotewise_maker_info": "gauge",
    "quotewise_maker_decisions": "counter",
    "quotewise_maker_decision_seconds": "summary",
    "quotewise_maker_tick_to_quote_seconds": "histogram",
    "quotewise_maker_orders_placed": "counter",
    "quotewise_maker_cancels": "counter",
    "quotewise_maker_rejects": "counter",
    "quotewise_maker_fills": "counter",
    "quotewise_maker_open_orders": "gauge",
    "quotewise_maker_position": "gauge",
    "quotewise_maker_pnl": "gauge",
    "quotewise_maker_fees": "gauge",
    "quotewise_maker_risk_state": "gauge",
    "quotewise_maker_risk_stale": "gauge",
    "quotewise_maker_operator_halt": "gauge",
    "quotewise_maker_risk_actions": "counter",
}
PER_MAKER = [name for name in FAMILIES if name.startswith("quotewise_maker_")]


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "metrics.db")))
    yield s
    s.close()


def scrape(text: bytes | str) -> dict[str, tuple[str, dict]]:
    """name -> (type, {(sample name, sorted labels): value})."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        out[family.name] = (family.type, samples)
    return out


def value(families: dict, family: str, sample: str | None = None, **labels: str) -> float:
    """The one sample of ``family`` (or its ``sample``, e.g. ``_total``) with exactly ``labels``."""
    _, samples = families[family]
    key = (sample or family, tuple(sorted(labels.items())))
    assert key in samples, f"no {key} in {sorted(samples)}"
    return samples[key]


def test_every_family_with_each_makers_own_numbers(store):
    async def scenario():
        engine = LiveEngine(store)
        await engine.start()
        a = await engine.start_maker(spec(name="plain"), actor="test")
        b = await engine.start_maker(
            spec(name="guarded", data="synthetic:700000", risk={"max_pos": 1000}), actor="test"
        )
        await until(lambda: engine.makers[a].fills >= 3 and engine.makers[b].fills >= 3, what="fills")
        # scraped and compared in one turn of the loop: the makers do not move in between
        families = scrape(metrics_text(engine))
        statuses = {m: engine.status(m) for m in (a, b)}
        guards = {m: engine.makers[m].guard for m in (a, b)}
        halts = {m: getattr(engine.makers[m], "halt", None) is not None for m in (a, b)}
        await engine.stop_maker(b, actor="test")
        after_stop = scrape(metrics_text(engine))
        await engine.shutdown()
        return families, statuses, guards, halts, after_stop

    families, statuses, guards, halts, after_stop = asyncio.run(scenario())

    assert {name: families[name][0] for name in FAMILIES if name in families} == FAMILIES
    assert 0 <= value(families, "quotewise_engine_uptime_seconds") < 600
    assert value(families, "quotewise_engine_makers_running") == 2
    assert value(families, "quotewise_engine_makers", state="running") == 2
    for maker_id, status in statuses.items():
        labels = {"maker": maker_id, "venue": "paper", "market": "SYNTH"}
        for name in PER_MAKER:  # every per-maker family has this maker (risk actions: the guarded one)
            if name == "quotewise_maker_risk_actions" and guards[maker_id] is None:
                continue
            assert any(dict(key[1]).get("maker") == maker_id for key in families[name][1]), name
        risk_on = "on" if guards[maker_id] is not None else "off"
        info = {**labels, "strategy": status["strategy"], "state": "running", "currency": status["currency"]}
        info["risk"] = risk_on
        assert value(families, "quotewise_maker_info", **info) == 1
        fills = value(families, "quotewise_maker_fills", "quotewise_maker_fills_total", **labels)
        assert fills == status["fills"] >= 3
        assert value(families, "quotewise_maker_position", **labels) == status["position"]
        assert math.isclose(value(families, "quotewise_maker_pnl", **labels), status["pnl"], abs_tol=1e-9)
        assert math.isclose(value(families, "quotewise_maker_fees", **labels), status["fees"], abs_tol=1e-12)
        decisions = value(families, "quotewise_maker_decisions", "quotewise_maker_decisions_total", **labels)
        assert decisions == status["decisions"] > 0
        count = value(
            families, "quotewise_maker_decision_seconds", "quotewise_maker_decision_seconds_count", **labels
        )
        spent = value(
            families, "quotewise_maker_decision_seconds", "quotewise_maker_decision_seconds_sum", **labels
        )
        assert count == decisions and 0 < spent < 60
        assert math.isclose(1e6 * spent / count, status["mean_decision_us"], rel_tol=1e-9)
        _, samples = families["quotewise_maker_tick_to_quote_seconds"]
        mine = [(name, v) for (name, key), v in samples.items() if dict(key).get("maker") == maker_id]
        buckets = [v for name, v in mine if name.endswith("_bucket")]
        assert buckets == sorted(buckets) and buckets[-1] == decisions  # cumulative, +Inf holds them all
        (latency_sum,) = [v for name, v in mine if name.endswith("_sum")]
        assert spent <= latency_sum < 60  # each latency includes its decision's computation
        placed = value(
            families, "quotewise_maker_orders_placed", "quotewise_maker_orders_placed_total", **labels
        )
        cancels = value(families, "quotewise_maker_cancels", "quotewise_maker_cancels_total", **labels)
        rejects = value(families, "quotewise_maker_rejects", "quotewise_maker_rejects_total", **labels)
        assert placed >= 2 and 0 <= cancels <= placed and 0 <= rejects <= placed
        assert value(families, "quotewise_maker_open_orders", **labels) == len(status["quotes"])
        state = risk_state(guards[maker_id], halts[maker_id])
        assert value(families, "quotewise_maker_risk_state", **labels) == state
        assert value(families, "quotewise_maker_risk_stale", **labels) == 0
        assert value(families, "quotewise_maker_operator_halt", **labels) == halts[maker_id] == 0
    guarded = {"maker": "guarded", "venue": "paper", "market": "SYNTH"}
    actions = {dict(k[1])["action"] for k in families["quotewise_maker_risk_actions"][1]}
    assert {"halt", "pause", "reduce_only", "trim"} <= actions
    assert value(families, "quotewise_maker_risk_state", **guarded) == RISK_OK  # 1000 lots: far off

    assert value(after_stop, "quotewise_engine_makers_running") == 1
    assert value(after_stop, "quotewise_engine_makers", state="stopped") == 1
    currency = statuses["guarded"]["currency"]
    stopped = {**guarded, "strategy": "skew", "state": "stopped", "currency": currency, "risk": "on"}
    assert value(after_stop, "quotewise_maker_info", **stopped) == 1
    assert value(after_stop, "quotewise_maker_open_orders", **guarded) == 0


def test_risk_state_is_the_worst_that_holds():
    def guard(halted=False, paused_until=None, stale=False, reduce_only=False):
        return SimpleNamespace(halted=halted, paused_until=paused_until, stale=stale, reduce_only=reduce_only)

    assert risk_state(None) == RISK_OK
    assert risk_state(guard()) == RISK_OK
    assert risk_state(guard(reduce_only=True)) == RISK_REDUCE_ONLY
    assert risk_state(guard(stale=True, reduce_only=True)) == RISK_PAUSED
    assert risk_state(guard(paused_until=5, reduce_only=True)) == RISK_PAUSED
    assert risk_state(guard(halted=True, paused_until=5, stale=True, reduce_only=True)) == RISK_HALTED
    assert risk_state(None, operator_halt=True) == RISK_HALTED
    assert risk_state(guard(reduce_only=True), operator_halt=True) == RISK_HALTED


def token_only(authorization: str | None = Header(default=None)) -> None:
    """Stands for the API's own dependency (server.py passes its viewer role)."""
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "no")


@pytest.mark.parametrize("workers", [1, 2], ids=["one-loop", "two-workers"])
def test_the_endpoint_serves_the_text_format_behind_the_token(store, workers):
    app = create_app(store, TOKEN, workers=workers)  # two: every family merged from the workers
    if not any(getattr(route, "path", None) == "/metrics" for route in app.routes):  # until server.py adds it
        add_metrics_route(app, app.state.engine, [Depends(token_only)])
    with TestClient(app, headers=AUTH) as api:
        assert api.get("/metrics", headers={"Authorization": ""}).status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        maker_id = api.post("/makers", json=spec().model_dump(mode="json", exclude_none=True)).json()["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/makers/{maker_id}").json()["fills"] < 1:
            assert time.monotonic() < deadline, "no fills"
            time.sleep(0.05)
        answer = api.get("/metrics")
        status = api.get(f"/makers/{maker_id}").json()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = scrape(answer.text)
    assert set(FAMILIES) <= set(families)
    labels = {"maker": maker_id, "venue": "paper", "market": "SYNTH"}
    assert value(families, "quotewise_engine_makers_running") == 1
    fills = value(families, "quotewise_maker_fills", "quotewise_maker_fills_total", **labels)
    assert 1 <= fills <= status["fills"]  # the maker went on trading between the two requests
