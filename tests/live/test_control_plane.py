"""The control plane: API keys with roles on every route (401 without a key, 403 with too small a
role), the audit naming the key, the public /maker routes, and the operator's kill switch (halt,
flatten inside the risk limits, resume)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from quotewise.errors import ConfigError
from quotewise.live.server import create_app, free_port, listen_address
from quotewise.live.store import Store, db_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

TOKEN = "control-plane-token"
PAPER = {
    "venue": "paper",
    "data": "synthetic:3000000",
    "speed": 20,
    "strategy": "symmetric",
    "spread": "1tick",
}


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "cp.db")))
    yield s
    s.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def test_roles_decide_every_route_and_the_audit_names_the_key(store):
    viewer, alice, bob = (
        store.add_api_key(n, r) for n, r in (("vic", "viewer"), ("alice", "trader"), ("bob", "trader"))
    )
    with TestClient(create_app(store, TOKEN)) as api:
        assert api.get("/maker/active").status_code == 401
        assert api.get("/maker/active", headers=bearer("qwk_not-a-key")).status_code == 401
        assert api.get("/maker/active", headers=bearer(viewer)).status_code == 200
        refused = api.post("/maker/start", json=PAPER, headers=bearer(viewer))
        assert refused.status_code == 403 and "trader" in refused.json()["detail"]

        started = api.post("/maker/start", json=PAPER, headers=bearer(alice))
        assert started.status_code == 200, started.text
        maker = started.json()["id"]
        assert [m["id"] for m in api.get("/maker/active", headers=bearer(viewer)).json()] == [maker]
        status = api.get("/maker/status", params={"id": maker}, headers=bearer(viewer)).json()
        assert status["config"]["params"]["spread"] == "1ticks" or status["config"]["params"][
            "spread"
        ].startswith("1")
        assert (
            api.post("/maker/stop", json={"id": maker}, headers=bearer(bob)).status_code == 403
        )  # not bob's
        assert api.post("/engine/stop", headers=bearer(alice)).status_code == 403  # admins only
        assert api.post("/maker/stop", json={"id": maker}, headers=bearer(alice)).status_code == 200

        store.revoke_api_key("alice")
        assert api.get("/maker/active", headers=bearer(alice)).status_code == 401
    actors = {(r["action"], r["actor"]) for r in store.audit_rows(maker)}
    assert {("start", "alice"), ("stop", "alice")} <= actors


def test_keys_are_stored_hashed_and_named_once(store):
    key = store.add_api_key("ops", "admin")
    assert key.startswith("qwk_") and len(key) > 40
    rows = store.api_keys()
    assert [(r["name"], r["role"]) for r in rows] == [("ops", "admin")] and "key_hash" not in rows[0]
    with store.engine.connect() as conn:
        assert key not in str(conn.exec_driver_sql("SELECT * FROM api_keys").all())
    with pytest.raises(ConfigError, match="already"):
        store.add_api_key("ops", "viewer")
    with pytest.raises(ConfigError, match="unknown role"):
        store.add_api_key("x", "god")


def test_halt_flattens_inside_the_risk_limits_and_resume_quotes_again(store):
    trader = store.add_api_key("desk", "trader")
    body = {**PAPER, "max_pos": 40, "max_order_size": 2, "size": 2}
    with TestClient(create_app(store, TOKEN), headers=bearer(trader)) as api:
        maker = api.post("/maker/start", json=body).json()["id"]
        status = until(
            lambda: abs((s := api.get("/maker/status", params={"id": maker}).json())["position"]) >= 6 and s,
            90,
            "some inventory",
        )
        halted = api.post(f"/maker/{maker}/halt", params={"flatten": "true"}).json()
        assert halted["halted"] == "flattening" and halted["position"] != 0, halted["position"]
        start_ts = halted["market_time"]
        flat = until(
            lambda: (
                (s := api.get("/maker/status", params={"id": maker}).json())["position"] == 0
                and not s["open_orders"]
                and s
            ),
            60,
            f"the position ({status['position']}) closed",
        )
        assert flat["market_time"] - start_ts <= 10e9, "flat within 10 s of replay time"
        orders = [r for r in store.audit_rows(maker) if r["action"] == "flatten_order"]
        assert orders and all(o["details"]["size"] <= 2 for o in orders)  # max_order_size
        assert all(o["actor"] == "desk" for o in orders)
        time.sleep(0.5)
        assert not api.get("/maker/status", params={"id": maker}).json()["open_orders"]  # still halted
        api.post(f"/maker/{maker}/resume")
        until(
            lambda: api.get("/maker/status", params={"id": maker}).json()["open_orders"], 30, "quotes again"
        )
        assert {"halt", "flattened", "resume_quoting"} <= {r["action"] for r in store.audit_rows(maker)}


@pytest.mark.parametrize(
    ("listen", "cert", "insecure", "message"),
    [
        ("0.0.0.0:8443", None, False, "needs TLS"),
        ("8443", None, False, "HOST:PORT"),
    ],
)
def test_listening_beyond_this_machine_needs_tls_or_insecure(listen, cert, insecure, message):
    with pytest.raises(ConfigError, match=message):
        listen_address(listen, cert, None, insecure)
    assert listen_address("127.0.0.1:9000", None, None, False) == ("127.0.0.1", 9000)
    assert listen_address("0.0.0.0:9000", None, None, True) == ("0.0.0.0", 9000)


def test_metrics_need_a_viewer_key_unless_public(store):
    viewer = store.add_api_key("scraper", "viewer")
    with TestClient(create_app(store, TOKEN)) as api:
        assert api.get("/metrics").status_code == 401
        assert "quotewise_engine_makers_running" in api.get("/metrics", headers=bearer(viewer)).text
    with TestClient(create_app(store, TOKEN, public_metrics=True)) as api:
        assert api.get("/metrics").status_code == 200
        assert api.get("/maker/active").status_code == 401  # only the metrics are public


@pytest.mark.slow
def test_the_cli_keys_halt_and_resume(mm):
    mm("engine", "start", "--db", mm.db)
    status = mm.json("engine", "status", "--json")
    assert status["url"].startswith("http://127.0.0.1:") and status["key_file"].endswith("token")
    key = mm("keys", "create", "--role", "trader", "--name", "carol").stdout.strip().splitlines()[-1]
    assert key.startswith("qwk_")
    assert "carol" in mm("keys", "list").stdout
    mm.env["QW_API_KEY"] = key
    assert mm.json("engine", "status", "--json")["key_file"] == "QW_API_KEY"
    maker = mm(
        "start", "paper", "--data", "synthetic:3000000", "--speed", "20", "--strategy", "symmetric",
        "--spread", "1tick", "--size", "2", "--max-pos", "40", "--max-order-size", "2",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    mm.wait(lambda: abs(mm.json("status", maker, "--json")["position"]) >= 4, timeout=90, what="inventory")
    mm("halt", maker, "--flatten")
    mm.wait(
        lambda: (s := mm.json("status", maker, "--json"))["position"] == 0 and not s["open_orders"],
        timeout=60,
        what="the position closed",
    )
    mm("resume", maker)
    mm.wait(lambda: mm.json("status", maker, "--json")["open_orders"], timeout=30, what="quotes again")
    mm("stop", maker)
    mm("keys", "revoke", "carol")
    refused = mm("list", check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr and "QW_API_KEY" in refused.stderr
    del mm.env["QW_API_KEY"]
    audit = mm.json("status", maker, "--json")  # the engine's own token still works
    assert audit["status"] == "stopped"
    mm("engine", "stop")


def test_performance_splits_the_pnl_and_risk_alerts_list_the_limits_decisions(store):
    trader = store.add_api_key("perf", "trader")
    body = {**PAPER, "max_pos": 3, "size": 2}
    with TestClient(create_app(store, TOKEN), headers=bearer(trader)) as api:
        maker = api.post("/maker/start", json=body).json()["id"]
        until(lambda: api.get("/maker/status", params={"id": maker}).json()["fills"] >= 5, 60, "fills")
        perf = api.get("/maker/performance", params={"id": maker}).json()
        alerts = api.get("/risk/alerts", params={"id": maker}).json()
        everyone = api.get("/maker/performance").json()
        api.post("/maker/stop", json={"id": maker})
    (one,) = perf["makers"]
    assert one["fills"] >= 5 and one["fills_without_mid"] == 0 and 0 < one["fill_rate"] <= 1
    assert one["pnl"] == pytest.approx(one["spread_capture"] + one["inventory"] + one["fees"], abs=1e-9)
    assert one["spread_capture"] > 0  # a passive maker buys below the mid and sells above it
    assert everyone["total"]["fills"] >= one["fills"] and everyone["currencies"] == ["USD"]
    assert alerts and {a["rule"] for a in alerts} >= {"max_pos"}
    assert [a["ts"] for a in alerts] == sorted((a["ts"] for a in alerts), reverse=True)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (the engine's own: the CLI trusts it by file)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quotewise-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "engine.crt", folder / "engine.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.slow
def test_the_engine_listens_over_tls_and_refuses_the_open_network_without_it(mm, tmp_path):
    refused = mm("engine", "start", "--listen", "0.0.0.0:8443", check=False)
    assert refused.returncode != 0 and "needs TLS" in refused.stderr and mm.engine_info() is None
    cert, key = self_signed(tmp_path)
    port = free_port()
    mm(
        "engine",
        "start",
        "--db",
        mm.db,
        "--listen",
        f"127.0.0.1:{port}",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    )
    status = mm.json("engine", "status", "--json")
    assert status["url"] == f"https://127.0.0.1:{port}"
    assert "makers" in mm("list").stdout  # the CLI trusts the engine's certificate by its file
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    mm("engine", "stop")
