"""An engine that does not answer in time gives a clear error, not a traceback."""

from __future__ import annotations

import os
import socket

import pytest

from quotewise.live import paths
from quotewise.live.client import EngineClient, EngineRefused


def test_an_engine_that_does_not_answer_is_named_with_what_was_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("QUOTEWISE_HOME", str(tmp_path))
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        paths.ensure_token()
        paths.write_engine_info({"pid": os.getpid(), "port": silent.getsockname()[1], "db": "x"})
        client = EngineClient(timeout=0.3)
        with pytest.raises(EngineRefused, match=r"did not answer GET /makers within 0.3 s"):
            client.list()
