"""``mm data record polymarket``: the market channel written as a capture, against the Polymarket
emulator (a synthetic market served as Polymarket's own messages); the capture reads back."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import pytest

from quotewise.data.polymarket import read_polymarket, write_capture
from quotewise.data.record import Recording, market_ws_url, record_polymarket
from quotewise.data.synthetic import synthetic_binary
from quotewise.errors import ConfigError
from quotewise.live.venues.polymarket_emulator import PolymarketEmulator

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
SECRET = base64.urlsafe_b64encode(b"quotewise-record-emulator-secret").decode()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_capture(synthetic_binary(40_000, seed=2), tmp_path_factory.mktemp("rec") / "cap.txt", TOKEN)


def test_a_recording_is_the_channel_as_sent_and_reads_back(capture: Path, tmp_path: Path) -> None:
    async def run() -> Recording:
        emulator = PolymarketEmulator(str(capture), "key", SECRET, "pass", speed=4.0)
        await emulator.start()
        try:
            url = market_ws_url(f"http://127.0.0.1:{emulator.port}")
            stats = await record_polymarket([TOKEN], tmp_path / "rec.txt.gz", url, duration_s=3.0)
            return stats
        finally:
            await emulator.stop()

    stats = asyncio.run(run())
    data = read_polymarket(tmp_path / "rec.txt.gz")
    assert stats.messages > 20 and stats.reconnects == 0
    assert data.instrument.symbol == TOKEN and data.instrument.binary
    kinds = data.report["messages"]
    assert kinds.get("book", 0) >= 1 and kinds.get("price_change", 0) > 10
    assert data.report["time_units"]["local"] == "ns"


def test_the_command_records_and_never_overwrites(capture: Path, tmp_path: Path) -> None:
    async def serve_and_record() -> subprocess.CompletedProcess:
        emulator = PolymarketEmulator(str(capture), "key", SECRET, "pass", speed=4.0)
        await emulator.start()
        try:
            command = [
                sys.executable, "-m", "quotewise.cli", "data", "record", "polymarket", TOKEN,
                "--out", str(tmp_path / "cli.txt"), "--duration", "2s",
                "--endpoint", f"http://127.0.0.1:{emulator.port}",
            ]  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
            return subprocess.CompletedProcess(command, proc.returncode or 0, out.decode(), err.decode())
        finally:
            await emulator.stop()

    done = asyncio.run(serve_and_record())
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and read_polymarket(tmp_path / "cli.txt").report["messages"]["book"] >= 1
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "quotewise.cli",
            "data",
            "record",
            "polymarket",
            TOKEN,
            "--out",
            str(tmp_path / "cli.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0 and "exists" in again.stderr


def test_an_endpoint_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="http://HOST:PORT"):
        market_ws_url("localhost:9000")
    assert market_ws_url("http://127.0.0.1:9000/") == "ws://127.0.0.1:9000/ws/market"
