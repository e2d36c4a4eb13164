"""Books: makers grouped under one name. End to end through ``mm`` (two paper makers in book B, one
outside it: totals equal to the sum of the makers' own status, a book limit halting both, a resumed
maker halted again, bad input refused in one line), the totals function on its own (linear, inverse,
quanto, no mid; properties), and a database from before books opening with its makers in none."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from quotewise.errors import ConfigError
from quotewise.live.books import MakerFigures, PnlHistory, book_limits, book_totals, breaches
from quotewise.live.store import SCHEMA_VERSION, Store, db_url
from quotewise.model.instrument import Instrument
from quotewise.portfolio.risk import parametric_var

LINEAR = Instrument(symbol="BTCUSDT", quote="USDT", tick_size=0.1, lot_size=0.001)
INVERSE = Instrument(
    symbol="BTCUSD_PERP", base="BTC", quote="USD", contract="inverse", contract_size=100.0, tick_size=0.1
)
QUANTO = Instrument(symbol="ETHUSD", contract="quanto", contract_size=1e-6, settle="BTC", tick_size=0.05)
PAPER = (
    "paper",
    "--data",
    "synthetic:3000000",
    "--speed",
    "20",
    "--strategy",
    "symmetric",
    "--spread",
    "1tick",
)


def figures(maker_id: str, inst: Instrument, lots: int, mid: float | None, pnl: float | None) -> MakerFigures:
    return MakerFigures(maker_id, inst.symbol, "running", None, inst, lots, mid, pnl)


# -- the totals, on their own -----------------------------------------------------------------------------
def test_linear_makers_sum_in_the_quote_currency_with_their_shares():
    long = figures("a", LINEAR, 2_000, 600_000.0, 12.5)  # 2 BTC at 60,000
    short = figures("b", LINEAR, -500, 600_010.0, -2.5)  # 0.5 BTC short at 60,001
    book = book_totals("B", [long, short])
    assert book["currency"] == "USDT" and book["unpriced"] == []
    a, b = book["makers"]
    assert a["exposure"] == pytest.approx(120_000.0) and b["exposure"] == pytest.approx(-30_000.5)
    t = book["totals"]
    assert t["pnl"] == pytest.approx(10.0)
    assert t["net_exposure"] == pytest.approx(89_999.5) and t["gross_exposure"] == pytest.approx(150_000.5)
    assert a["share"] == pytest.approx(120_000 / 150_000.5) and a["share"] + b["share"] == pytest.approx(1.0)
    assert book["breaches"] == []


def test_an_inverse_contract_counts_its_contracts_value_and_its_coin_pnl_at_the_mid():
    # 30 contracts of 100 USD, short; P&L 0.01 BTC with BTC at 50,000: 500 USD
    book = book_totals("B", [figures("inv", INVERSE, -30, 500_000.0, 0.01)])
    (line,) = book["makers"]
    assert line["exposure"] == pytest.approx(-3_000.0) and line["pnl"] == pytest.approx(500.0)
    assert line["pnl_settle"] == 0.01 and line["settle_currency"] == "BTC"
    assert book["currency"] == "USD" and book["totals"]["gross_exposure"] == pytest.approx(3_000.0)


def test_a_quanto_maker_is_unpriced_and_left_out_and_no_mid_means_cash_only():
    book = book_totals(
        "B", [figures("q", QUANTO, 5, 40_000.0, 0.2), figures("flat", LINEAR, 1_000, None, 3.0)]
    )
    q, flat = book["makers"]
    assert book["unpriced"] == ["q"] and q["exposure"] is None and q["pnl"] is None
    assert flat["exposure"] == 0.0 and flat["pnl"] == 3.0  # no mid yet: no exposure, its cash
    assert book["totals"] == {"pnl": 3.0, "net_exposure": 0.0, "gross_exposure": 0.0, "var_1m": None}
    assert flat["share"] == 0.0


def test_each_limit_is_breached_strictly_beyond_its_threshold():
    totals = {"pnl": -50.0, "net_exposure": -800.0, "gross_exposure": 1_200.0}
    at = book_limits({"max_loss": 50, "max_gross": 1_200, "max_net": 800})
    assert breaches(totals, at) == []  # at a limit is not beyond it
    beyond = book_limits({"max_loss": 49.9, "max_gross": 1_199, "max_net": 799})
    assert [(b["limit"], b["value"], b["threshold"]) for b in breaches(totals, beyond)] == [
        ("max_loss", 50.0, 49.9),
        ("max_gross", 1_200.0, 1_199.0),
        ("max_net", 800.0, 799.0),
    ]
    assert breaches(totals, None) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_gross": -1}, "max_gross: must be >= 0"),
        ({"max_loss": "lots"}, "max_loss: a number"),
        ({"max_net": math.inf}, "max_net: must be >= 0"),
        ({"flatten": True}, "give at least one limit"),
        ({"max_drawdown": 3}, "unknown book limit max_drawdown"),
        ({"max_net": 1, "action": "stop"}, "action: one of halt, pause, reduce"),
        ({"max_net": 1, "pause_for": "5s"}, "pause_for: how long a pause"),
        ({"max_net": 1, "action": "pause", "pause_for": "0s"}, "pause_for: must be a positive"),
        ({"max_net": 1, "action": "reduce", "flatten": True}, "flatten: closes the positions of a halt"),
    ],
)
def test_bad_limits_are_refused_by_name(values, message):
    with pytest.raises(ConfigError, match=message):
        book_limits(values)


def test_var_1m_is_the_backtests_parametric_var_of_the_pnl_each_second():
    history = PnlHistory()
    assert history.var_1m() is None
    pnl = [0.0, 1.0, -1.0, 2.0, 0.5, 1.5]
    for k, value in enumerate(pnl):
        history.add(k * 1_000_000_000, value)
        history.add(k * 1_000_000_000 + 500_000_000, 99.0)  # within the same second: not sampled
    want = parametric_var(np.diff(pnl), 60.0, 1.0)
    assert history.var_1m() == pytest.approx(want) and want > 0
    limits = book_limits({"var_1m": want * 0.9})
    totals = {"pnl": 0.0, "net_exposure": 0.0, "gross_exposure": 0.0, "var_1m": history.var_1m()}
    assert [b["limit"] for b in breaches(totals, limits)] == ["var_1m"]
    assert breaches({**totals, "var_1m": None}, limits) == []  # not known yet: no breach


def test_a_pause_lasts_pause_for_written_back_in_its_unit():
    assert book_limits({"max_net": 1, "action": "pause", "pause_for": 90_000})["pause_for"] == "90s"
    assert book_limits({"max_net": 1, "action": "reduce"})["pause_for"] == "1m"
    assert book_limits({"max_net": 1})["action"] == "halt"


positions = st.lists(
    st.tuples(st.integers(-(10**6), 10**6), st.floats(1.0, 1e7), st.floats(-1e6, 1e6)), min_size=1, max_size=8
)


@given(positions)
def test_totals_are_the_sums_gross_bounds_net_and_shares_add_to_one(rows):
    makers = [figures(f"m{i}", LINEAR, lots, mid, pnl) for i, (lots, mid, pnl) in enumerate(rows)]
    book = book_totals("B", makers)
    t, lines = book["totals"], book["makers"]
    assert t["pnl"] == pytest.approx(math.fsum(pnl for _, _, pnl in rows), abs=1e-6)
    assert t["net_exposure"] == pytest.approx(math.fsum(line["exposure"] for line in lines))
    assert t["gross_exposure"] >= abs(t["net_exposure"]) - 1e-9 * t["gross_exposure"]
    if t["gross_exposure"] > 0:
        assert math.fsum(line["share"] for line in lines) == pytest.approx(1.0)


# -- the store ------------------------------------------------------------------------------------------
def test_a_database_from_before_books_opens_with_its_makers_in_none(tmp_path):
    path = tmp_path / "state.db"
    store = Store(db_url(str(path)))
    store.add_maker("old", "paper", "SYNTH", "synthetic", 1.0, "skew", {}, None, {}, {})
    store.close()
    with sqlite3.connect(path) as conn:  # the layout of version 6: no makers.book, no books table
        conn.execute("ALTER TABLE makers DROP COLUMN book")
        conn.execute("DROP TABLE books")
        conn.execute("UPDATE schema_version SET version = 6")
    again = Store(db_url(str(path)))
    assert again.maker("old").book is None and again.book_names() == []
    again.add_maker("new", "paper", "SYNTH", "synthetic", 1.0, "skew", {}, None, {}, {}, book="B")
    again.set_book_limits("B", {"max_loss": 5.0})
    assert [m.maker_id for m in again.makers(book="B")] == ["new"]
    assert again.book_names() == ["B"] and again.book_limits() == {"B": {"max_loss": 5.0}}
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("book", "limits", "B", "--max-gross", "-1"), "error: max_gross: must be >= 0, got -1.0"),
        (("book", "limits", "B", "--flatten"), "error: give at least one limit"),
        (("book", "limits", "no/slash", "--max-loss", "1"), "error: book name 'no/slash'"),
        (("book", "limits", "B", "--max-net", "1", "--action", "stop"), "error: action: one of halt, pause"),
        (("status", "a", "--book", "B"), "error: --book shows a whole book"),
    ],
)
def test_bad_book_commands_say_what_is_wrong_in_one_line_before_asking_the_engine(args, message, tmp_path):
    from quotewise.cli import app

    result = CliRunner().invoke(app, list(args), env={"QUOTEWISE_HOME": str(tmp_path), "COLUMNS": "200"})
    assert result.exit_code == 2 and result.output.startswith(message)
    assert len(result.output.strip().splitlines()) == 1  # no engine needed: refused before asking


def test_a_book_holds_one_quote_currency(tmp_path):
    from quotewise.live.engine import LiveEngine

    store = Store(db_url(str(tmp_path / "cur.db")))
    store.add_maker("usdt", "paper", "BTCUSDT", "f", 1.0, "skew", {}, None, {}, LINEAR.model_dump(), book="B")
    engine = LiveEngine(store)
    with pytest.raises(ConfigError, match=r"book B is in USDT \(usdt\); this market is quoted in USD"):
        engine._check_book_currency("B", INVERSE)
    engine._check_book_currency("B", LINEAR)  # the same currency: welcome
    engine._check_book_currency("other", INVERSE)
    store.close()


# -- through the API: limits set first, a flattening breach, the roles ------------------------------------
@pytest.mark.parametrize("workers", [1, 2], ids=["one-loop", "two-workers"])
def test_limits_set_before_the_makers_flatten_the_whole_book_and_need_an_admin(tmp_path, workers):
    import time
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from quotewise.live.server import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    store = Store(db_url(str(tmp_path / "api.db")))
    viewer, trader = store.add_api_key("vic", "viewer"), store.add_api_key("tess", "trader")
    body = {"data": "synthetic:3000000", "speed": 20, "strategy": "symmetric", "spread": "1tick", "book": "F"}
    app = create_app(store, "admin-token", workers=workers)  # two: a book's makers share one worker
    with TestClient(app, headers={"Authorization": "Bearer admin-token"}) as api:
        as_trader = {"Authorization": f"Bearer {trader}"}
        refused = api.put("/books/F/limits", json={"max_net": 5}, headers=as_trader)
        assert refused.status_code == 403
        assert api.put("/books/F/limits", json={"max_net": -5}).status_code == 422
        assert api.get("/books/F", headers={"Authorization": f"Bearer {viewer}"}).status_code == 404
        made = api.put("/books/F/limits", json={"max_net": 5, "flatten": True}).json()
        assert made["makers"] == [] and made["limits"]["max_net"] == 5.0 and made["limits"]["flatten"]
        ids = [api.post("/maker/start", json={**body, "name": n}).json()["id"] for n in ("f1", "f2")]
        if workers > 1:  # the book's two makers in one worker, the other idle
            assert sorted(w["makers"] for w in api.get("/health").json()["workers"]) == [0, 2]
        deadline = time.monotonic() + 30
        while True:  # each halted at its book's first breach, then flat
            book = api.get("/books/F").json()
            done = [m for m in book["makers"] if m["halted"] == "halted" and m["position"] == 0]
            if len(done) == 2 and all(api.get(f"/makers/{i}").json()["open_orders"] == [] for i in ids):
                break
            assert time.monotonic() < deadline, f"the book was not flattened: {book}"
            time.sleep(0.1)
        assert book["totals"]["net_exposure"] == 0 and book["breaches"] == []
        assert api.get("/books").json() == [{"book": "F", "makers": ids, "limits": made["limits"]}]
    actions = {(r["action"], r["maker_id"]) for r in store.audit_rows() if r["actor"] == "book-limit:F"}
    assert {(a, m) for a in ("book_limit", "halt", "flattened") for m in ids} <= actions
    store.close()


def test_a_pause_action_pauses_every_maker_for_pause_for_and_again_while_still_beyond(tmp_path):
    import time
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from quotewise.live.server import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    store = Store(db_url(str(tmp_path / "pause.db")))
    body = {"data": "synthetic:3000000", "speed": 20, "strategy": "symmetric", "spread": "1tick", "book": "P"}
    with TestClient(create_app(store, "admin-token"), headers={"Authorization": "Bearer admin-token"}) as api:
        limits = {"max_gross": 1, "action": "pause", "pause_for": "2s"}
        made = api.put("/books/P/limits", json=limits).json()
        assert made["limits"]["action"] == "pause" and made["limits"]["pause_for"] == "2s"
        ids = [api.post("/maker/start", json={**body, "name": n}).json()["id"] for n in ("p1", "p2")]
        deadline = time.monotonic() + 30

        def paused(maker: str) -> list[dict]:
            return [
                r for r in store.risk_events(maker) if r["rule"] == "pause_windows" and r["action"] == "pause"
            ]

        while not all(len(paused(m)) >= 2 for m in ids):  # 2 s of each maker's clock, then again
            assert time.monotonic() < deadline, f"the book did not pause twice: {api.get('/books/P').json()}"
            time.sleep(0.1)
        book = api.get("/books/P").json()
        assert all(m["halted"] is None for m in book["makers"])  # paused, never halted
        for maker in ids:
            # a window lasts pause_for: the book opens the next one only after it (the maker's own pause
            # events come at its first decision inside each window, so they can be closer than that)
            starts = [r["ts"] for r in store.risk_events(maker) if r["rule"].startswith("book_")]
            assert len(starts) >= 2 and starts[1] - starts[0] >= 2_000_000_000
            risk = api.get(f"/makers/{maker}").json()
            assert risk["status"] == "running"
    rows = [r for r in store.audit_rows() if r["actor"] == "book-limit:P"]
    assert {(r["action"], r["maker_id"]) for r in rows} >= {
        (a, m) for a in ("book_limit", "config") for m in ids
    }
    assert all(r["details"]["action"] == "pause" for r in rows if r["action"] == "book_limit")
    store.close()


# -- end to end through mm -------------------------------------------------------------------------------
def exposure_of(status: dict) -> float:
    """A linear maker's exposure from its own ``mm status``: position x mid (synthetic: contract 1)."""
    return status["position"] * (status["best_bid"] + status["best_ask"]) / 2


def test_a_books_totals_limits_and_halts_through_mm(mm):
    mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    a = mm("start", *PAPER, "--book", "B", "--name", "a").stdout.strip()
    b = mm("start", *PAPER, "--book", "B", "--name", "b").stdout.strip()
    solo = mm("start", *PAPER, "--name", "solo").stdout.strip()
    assert (a, b, solo) == ("a", "b", "solo")

    unknown = mm("status", "--book", "NOPE", check=False)
    assert (
        unknown.returncode == 2
        and unknown.stderr.strip() == "error: no book 'NOPE' (mm book list shows them) (HTTP 404)"
    )
    bad_name = mm("start", *PAPER, "--book", "no spaces", check=False)
    assert bad_name.returncode == 2 and "book" in bad_name.stderr

    seen: dict = {}

    def lines() -> list[dict]:
        seen.update(mm.json("status", "--book", "B", "--json"))
        return seen["makers"]

    def inventory() -> bool:
        return all(line["position"] != 0 for line in lines())

    mm.wait(inventory, timeout=30, what="both makers of B to hold a position")
    assert [m["id"] for m in seen["makers"]] == ["a", "b"] and seen["currency"] == "USD"
    assert mm.json("book", "list", "--json") == [{"book": "B", "makers": ["a", "b"], "limits": None}]

    mm("book", "limits", "B", "--max-gross", "1")  # beyond it at once: both hold a position

    def halted(*ids: str) -> bool:
        return all(line["halted"] == "halted" for line in lines() if line["id"] in ids)

    mm.wait(lambda: halted("a", "b"), timeout=10, what="the book limit to halt a and b")
    assert [s["halted"] for s in mm.json("status", "--json")] == ["halted", "halted", None]  # a, b, solo
    state = mm.json("status", "solo", "--json")
    assert state["halted"] is None and state["status"] == "running"  # outside the book: untouched
    shown = mm("status", "--book", "B").stdout
    assert "beyond max_gross" in shown and "limits: max_gross 1" in shown

    mm("resume", "a")  # still beyond the limit: halted again at the next check
    mm.wait(lambda: halted("a"), timeout=10, what="a halted again")
    mm("stop", "a")
    mm("stop", "b")  # stopped: their figures hold still, to compare
    book = mm.json("status", "--book", "B", "--json")
    own = mm.json("status", "--json")[:2]  # each maker's own status: a, b
    assert [s["id"] for s in own] == ["a", "b"]
    totals = book["totals"]
    assert totals["pnl"] == pytest.approx(sum(s["pnl"] for s in own), rel=1e-12)
    assert [m["position"] for m in book["makers"]] == [s["position"] for s in own]
    exposures = [exposure_of(s) for s in own]
    assert totals["net_exposure"] == pytest.approx(sum(exposures), rel=1e-9)
    assert totals["gross_exposure"] == pytest.approx(sum(map(abs, exposures)), rel=1e-9)
    assert book["breaches"][0]["limit"] == "max_gross"

    store = Store(db_url(mm.db))
    rows = [r for r in store.audit_rows() if r["actor"] == "book-limit:B"]
    assert {(r["action"], r["maker_id"]) for r in rows} == {
        ("book_limit", "a"),
        ("halt", "a"),
        ("book_limit", "b"),
        ("halt", "b"),
    }
    assert sum(r["action"] == "halt" and r["maker_id"] == "a" for r in rows) == 2  # after the resume
    first = next(r["details"] for r in rows if r["action"] == "book_limit")
    assert first["limit"] == "max_gross" and first["threshold"] == 1.0 and first["value"] > 1.0
    alerts = store.risk_events("b")
    assert alerts[-1]["rule"] == "book_max_gross" and alerts[-1]["limit"] == 1.0
    assert not [r for r in store.audit_rows("solo") if r["action"] in ("halt", "book_limit")]
    store.close()
    mm("engine", "stop")
