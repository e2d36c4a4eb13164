"""The HTTP API in process: every route behind the token (the docs too), a market that is not the
data's refused, fills and status in instrument units on the grid, also for a maker stopped before
an engine restart."""

from __future__ import annotations

import time
import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from quotewise.live.server import create_app
from quotewise.live.store import Store, db_url

with warnings.catch_warnings():  # starlette asks for httpx2 from now on; its client works on httpx as well
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FILL_KEYS = {
    *("seq", "order_id", "time", "side", "price", "size", "fee", "liquidity", "position", "cash"),
    "trade_id",
}


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "api.db")))
    yield s
    s.close()


def engine_api(store: Store) -> TestClient:
    """An engine and its API on ``store`` (entering it starts the engine, leaving it shuts it down)."""
    return TestClient(create_app(store, TOKEN), headers=AUTH)


def on_grid(value: float, decimals: int) -> bool:
    """Written with at most ``decimals`` decimals (584.81, not 584.8100000000001)."""
    return len(repr(value).partition(".")[2]) <= decimals


def test_the_docs_need_the_token_like_every_route(store):
    with engine_api(store) as api:
        for path in ("/docs", "/openapi.json", "/health", "/makers"):
            assert api.get(path, headers={"Authorization": ""}).status_code == 401, path
            assert api.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        spec = api.get("/openapi.json").json()
        assert "/makers/{maker_id}/fills" in spec["paths"] and "/maker/start" in spec["paths"]
        assert spec["components"]["securitySchemes"]["BearerKey"]["scheme"] == "bearer"
        assert spec["security"] == [{"BearerKey": []}]
        answer = spec["paths"]["/maker/performance"]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"] == {"$ref": "#/components/schemas/PerformanceReport"}  # typed answers
        assert {"MakerStatus", "RiskAlert", "Started", "Health"} <= set(spec["components"]["schemas"])
        page = api.get("/docs")
        assert page.status_code == 200 and "/maker/{maker_id}/halt" in page.text
        assert "<script" not in page.text and "<link" not in page.text  # nothing fetched: works offline


def test_a_market_that_is_not_the_datas_is_refused_with_both_names(store):
    with engine_api(store) as api:
        refused = api.post("/makers", json={"market": "ETHUSDT", "data": "synthetic:5000"})
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail == "market ETHUSDT does not match the data: synthetic:5000 holds SYNTH"
        assert api.get("/makers").json() == [] and store.audit_rows() == []


def test_fills_and_status_in_instrument_units_also_after_an_engine_restart(store):
    body = {"data": "synthetic:600000", "speed": 40, "params": {"spread": "1tick", "interval": "100ms"}}
    with engine_api(store) as api:
        maker_id = api.post("/makers", json=body).json()["id"]
        deadline = time.monotonic() + 20
        while len(api.get(f"/makers/{maker_id}/fills").json()) < 3:
            assert time.monotonic() < deadline, "no fills"
            time.sleep(0.05)
        running = api.get(f"/makers/{maker_id}").json()
        api.delete(f"/makers/{maker_id}")
    with engine_api(store) as api:  # a new engine: the maker is not running in it
        fills = api.get(f"/makers/{maker_id}/fills").json()
        stopped = api.get(f"/makers/{maker_id}").json()

    assert running["market"] == "SYNTH"  # no market given: the data's
    prices = [running["best_bid"], running["best_ask"], *(q["price"] for q in running["quotes"])]
    assert all(90 < p < 110 and on_grid(p, 2) for p in prices)  # synthetic: tick 0.01 around 100
    assert all(set(f) == FILL_KEYS for f in fills)
    assert all(90 < f["price"] < 110 and on_grid(f["price"], 2) for f in fills)
    assert {f["side"] for f in fills} <= {"buy", "sell"}
    assert {f["liquidity"] for f in fills} <= {"maker", "taker"}
    position = 0.0
    for f in fills:
        position += f["size"] if f["side"] == "buy" else -f["size"]
        assert f["position"] == position
    assert stopped["status"] == "stopped" and stopped["position"] == fills[-1]["position"]
    assert stopped["fills"] == len(fills)


def test_real_btcusdt_data_refuses_ethusdt_takes_btc_slash_usdt_and_finishes_with_no_order_open(
    store, shared_data
):
    path = shared_data / "tardis" / "binance-futures_book_snapshot_25_BTCUSDT.csv"  # 0.2 s of market
    if not path.exists():
        pytest.skip(f"real market data not available: {path} is missing")
    with engine_api(store) as api:
        refused = api.post("/makers", json={"market": "ETHUSDT", "data": str(path)})
        assert refused.status_code == 422 and refused.json()["detail"] == (
            f"market ETHUSDT does not match the data: {path} holds BTCUSDT"
        )
        started = api.post("/makers", json={"market": "BTC/USDT", "data": str(path), "speed": 0.5})
        maker_id = started.json()["id"]
        deadline = time.monotonic() + 20
        while api.get(f"/makers/{maker_id}").json()["status"] != "finished":
            assert time.monotonic() < deadline, "the maker did not finish"
            time.sleep(0.05)
        status = api.get(f"/makers/{maker_id}").json()
    assert status["market"] == "BTC/USDT" and status["decisions"] > 0 and status["quotes"] == []
    assert on_grid(status["best_bid"], 2) and on_grid(status["best_ask"], 2)
    assert store.orders(maker_id) and maker_id not in store.open_orders()  # it quoted; nothing left open


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"spread": "-1tick"}, "spread: must be >= 0"),
        ({"spread": 0}, "spread 0 needs vol_mult > 0 or a min_spread"),
        ({"size": 0.5}, "not a whole number of the venue's size step 1"),
        ({"max_loss": -5}, "max_loss: Input should be greater than 0"),
        ({"max_loss_window": "soon"}, "max_loss_window: cannot read 'soon'"),
    ],
)
def test_invalid_settings_are_refused_on_start_and_config_and_change_nothing(store, change, says):
    """The same validation as the CLI: 422 with one line, nothing stored, audited or changed."""
    body = {"data": "synthetic:200000", "speed": 1, "params": {"spread": "2ticks"}}
    risk_keys = {"max_loss", "max_loss_window"}
    with engine_api(store) as api:
        params = {k: v for k, v in change.items() if k not in risk_keys}
        risk = {k: v for k, v in change.items() if k in risk_keys} or None
        refused = api.post("/makers", json={**body, "params": {**body["params"], **params}, "risk": risk})
        assert refused.status_code == 422 and says in refused.json()["detail"]
        assert api.get("/makers").json() == [] and store.audit_rows() == []
        maker_id = api.post("/makers", json=body).json()["id"]
        before = api.get(f"/makers/{maker_id}/config").json()
        audited = len(store.audit_rows(maker_id))
        patched = api.patch(f"/makers/{maker_id}/config", json={"changes": change})
        assert patched.status_code == 422 and says in patched.json()["detail"]
        assert api.get(f"/makers/{maker_id}/config").json() == before
        assert len(store.audit_rows(maker_id)) == audited


def test_a_refused_request_never_echoes_what_was_sent(store):
    """An invalid start answers where and what was wrong, never the values: a request may carry an
    exchange's API secret."""
    secret = "SECRET-NOT-TO-ECHO-42"
    with engine_api(store) as api:
        for body in (
            {"venue": "nowhere", "market": "BTC/USDT", "credentials": {"api_key": "k", "secret": secret}},
            {"venue": "binanceusdm", "market": "BTC/USDT:USDT", "credentials": {"secret": secret}},
        ):
            r = api.post("/makers", json=body)
            assert r.status_code == 422 and secret not in r.text
            assert r.json()["detail"][0]["msg"]
