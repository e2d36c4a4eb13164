"""API keys: where they come from (the environment first, else a keys file only its owner can read),
the errors that say what to fix, and the promise that a secret is never shown, logged or stored,
checked down to the engine's database bytes, audit rows and log records."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from quotewise.errors import ConfigError
from quotewise.live.engine import LiveEngine, MakerSpec
from quotewise.live.store import Store, db_url
from quotewise.live.venues.binance_emulator import BinanceEmulator
from quotewise.live.venues.keys import Keys, load_keys
from quotewise.logs import LineFormatter

EXCHANGE = "binanceusdm"
KEY_VAR, SECRET_VAR = "QW_BINANCEUSDM_API_KEY", "QW_BINANCEUSDM_SECRET"
FILE_KEY, FILE_SECRET = "AK-from-file-1b2c", "SK-from-file-9f8e7d"


@pytest.fixture
def keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where load_keys looks for the file (not created yet); the environment holds no keys, so
    a developer's own keys cannot leak into, or change, these tests."""
    monkeypatch.delenv(KEY_VAR, raising=False)
    monkeypatch.delenv(SECRET_VAR, raising=False)
    monkeypatch.setenv("QUOTEWISE_HOME", str(tmp_path / "home"))
    path = tmp_path / "keys.yaml"
    monkeypatch.setenv("QW_KEYS_FILE", str(path))
    return path


def write_keys(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def good_file(path: Path, mode: int = 0o600) -> Path:
    return write_keys(path, f"{EXCHANGE}:\n  api_key: {FILE_KEY}\n  secret: {FILE_SECRET}\n", mode)


# -- where keys come from ---------------------------------------------------------------------------
def test_environment_wins_over_the_keys_file(keys_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good_file(keys_file)
    monkeypatch.setenv(KEY_VAR, "AK-env")
    monkeypatch.setenv(SECRET_VAR, "SK-env")
    keys = load_keys(EXCHANGE)
    assert (keys.api_key, keys.secret, keys.source) == ("AK-env", "SK-env", "environment")


@pytest.mark.parametrize(("present", "missing"), [(KEY_VAR, SECRET_VAR), (SECRET_VAR, KEY_VAR)])
def test_half_the_keys_in_the_environment_names_the_missing_variable(
    keys_file: Path, monkeypatch: pytest.MonkeyPatch, present: str, missing: str
) -> None:
    """Half a pair is a mistake to point out, not a reason to fall back silently to the file."""
    good_file(keys_file)
    monkeypatch.setenv(present, "some-value")
    with pytest.raises(ConfigError, match=f"^{missing} is not set"):
        load_keys(EXCHANGE)


def test_a_keys_file_only_its_owner_can_read_is_used(keys_file: Path) -> None:
    good_file(keys_file, 0o600)
    keys = load_keys(EXCHANGE)
    assert (keys.api_key, keys.secret, keys.source) == (FILE_KEY, FILE_SECRET, str(keys_file))


def test_a_keys_file_others_can_read_is_refused_with_the_chmod_to_run(keys_file: Path) -> None:
    good_file(keys_file, 0o644)
    with pytest.raises(ConfigError) as refused:
        load_keys(EXCHANGE)
    assert f"chmod 600 {keys_file}" in str(refused.value)
    assert FILE_SECRET not in str(refused.value)


@pytest.mark.parametrize("content", [None, "bybit:\n  api_key: a\n  secret: b\n", ""])
def test_no_keys_anywhere_names_both_variables_and_the_file(keys_file: Path, content: str | None) -> None:
    """No file, a file for another exchange, an empty file: the error says both ways to fix it."""
    if content is not None:
        write_keys(keys_file, content)
    with pytest.raises(ConfigError) as missing:
        load_keys(EXCHANGE)
    message = str(missing.value)
    assert KEY_VAR in message and SECRET_VAR in message and str(keys_file) in message


def test_an_entry_without_its_secret_is_an_error_not_a_fallback(keys_file: Path) -> None:
    write_keys(keys_file, f"{EXCHANGE}:\n  api_key: {FILE_KEY}\n")
    with pytest.raises(ConfigError, match="needs both api_key and secret"):
        load_keys(EXCHANGE)


# an indentation slip on the secret's line: YAML's own message quotes the offending line
MALFORMED = f"{EXCHANGE}:\n  api_key: {FILE_KEY}\n   secret: {FILE_SECRET}\n"


def test_malformed_yaml_is_a_clear_error_naming_the_file(keys_file: Path) -> None:
    write_keys(keys_file, MALFORMED)
    with pytest.raises(ConfigError) as bad:
        load_keys(EXCHANGE)
    assert f"{keys_file} is not valid YAML" in str(bad.value)
    assert "line 3" in str(bad.value)  # where to look


def test_malformed_yaml_error_does_not_quote_the_secret(keys_file: Path) -> None:
    """The error travels: ``mm start`` prints it, and a maker that cannot resume stores it as its
    reason, in the audit and in the engine's log."""
    write_keys(keys_file, MALFORMED)
    with pytest.raises(ConfigError) as bad:
        load_keys(EXCHANGE)
    assert FILE_SECRET not in str(bad.value)


def test_keys_never_show_in_repr_or_str() -> None:
    keys = Keys("AK-visible-nowhere", "SK-visible-nowhere", "environment")
    for shown in (repr(keys), str(keys), f"{keys}", repr([keys]), repr({"k": keys})):
        assert "AK-visible-nowhere" not in shown and "SK-visible-nowhere" not in shown
        assert "environment" in shown  # where they came from is fine, and useful
    spec = MakerSpec(
        venue=EXCHANGE,
        market="ETH/USDT:USDT",
        credentials={"api_key": "AK-visible-nowhere", "secret": "SK-visible-nowhere"},
    )
    for shown in (repr(spec), str(spec), spec.model_dump_json()):
        assert "SK-visible-nowhere" not in shown


# -- the engine, on the emulator ----------------------------------------------------------------------
ENGINE_KEY, ENGINE_SECRET = "AK-engine-5e6f7a", "SECRET-XYZ-0d1c2b3a"


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def emulator(secret: str) -> BinanceEmulator:
    return BinanceEmulator("synthetic", ENGINE_KEY, secret, speed=3, symbol="ETHUSDT")


def maker_spec(port: int, secret: str, name: str) -> MakerSpec:
    return MakerSpec(
        venue=EXCHANGE,
        market="ETH/USDT:USDT",
        endpoint=f"http://127.0.0.1:{port}",
        credentials={"api_key": ENGINE_KEY, "secret": secret},
        name=name,
        strategy="symmetric",
        params={"spread": "1tick"},
    )


def database_bytes(path: Path) -> bytes:
    """The database file and its WAL (recent writes live there until a checkpoint)."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def logged_text(records: list[logging.LogRecord]) -> str:
    """Every record as the engine's log writes it (with its key=value fields, which caplog's own
    formatter leaves out) plus every attribute, so nothing attached to a record is missed."""
    formatter = LineFormatter()
    return "\n".join(formatter.format(r) + " " + repr(vars(r)) for r in records)


def test_the_secret_is_in_no_database_byte_audit_row_or_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="quotewise")
    path = tmp_path / "live.db"
    store = Store(db_url(str(path)))

    async def scenario() -> tuple[bytes, dict]:
        em = emulator(ENGINE_SECRET)
        port = await em.start()
        engine = LiveEngine(store)
        try:
            maker = await engine.start_maker(maker_spec(port, ENGINE_SECRET, "keyed"))
            # quotes working at the exchange: signed requests have gone out and been accepted
            await until(
                lambda: any(q["status"] == "working" for q in engine.status(maker)["quotes"]),
                what="working quotes",
            )
            await asyncio.sleep(2.0)
            status = engine.status(maker)
            while_running = database_bytes(path)  # before shutdown checkpoints the WAL
        finally:
            await engine.shutdown()
            await em.stop()
        return while_running, status

    while_running, status = asyncio.run(scenario())
    assert status["status"] == "running" and status["decisions"] > 0  # it really traded
    assert b"keyed" in while_running  # the bytes read do hold what the engine wrote
    rows = store.audit_rows()
    assert {"start", "shutdown"} <= {r["action"] for r in rows}
    store.close()
    assert caplog.records, "nothing was logged: the log check would prove nothing"
    # the secret: in no record at all, ccxt's own DEBUG lines included (it logs signatures, not the
    # secret); the API key: in none of ours (ccxt's DEBUG request lines show the X-MBX-APIKEY header,
    # which the engine's log never records: it keeps third-party loggers at WARNING)
    assert ENGINE_SECRET not in logged_text(caplog.records) + caplog.text, "the secret was logged"
    ours = logged_text([r for r in caplog.records if r.name.startswith("quotewise")])
    assert ENGINE_KEY not in ours, "the API key was logged"
    for hidden in (ENGINE_SECRET, ENGINE_KEY):  # keys.py: neither is stored
        assert hidden.encode() not in while_running, f"{hidden} in the database while running"
        assert hidden.encode() not in database_bytes(path), f"{hidden} in the database"
        assert hidden not in repr(rows) and hidden not in repr(status)


def test_a_wrong_secret_is_refused_at_start_and_nothing_is_stored(tmp_path: Path) -> None:
    store = Store(db_url(str(tmp_path / "live.db")))
    wrong = "SECRET-WRONG-77aa"

    async def scenario() -> None:
        em = emulator(ENGINE_SECRET)
        port = await em.start()
        engine = LiveEngine(store)
        try:
            with pytest.raises(ConfigError) as refused:
                await engine.start_maker(maker_spec(port, wrong, "refused"))
        finally:
            await engine.shutdown()
            await em.stop()
        message = str(refused.value)
        assert "binanceusdm refused the API keys" in message and wrong not in message

    asyncio.run(scenario())
    assert store.maker("refused") is None
    assert [r for r in store.audit_rows() if r["action"] != "shutdown"] == []
    store.close()
