"""The engine's log: one structured line per record, to a file and to stderr, set up once."""

from __future__ import annotations

import logging
import re

import pytest

from quotewise import logs

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (?P<rest>.*)$")


@pytest.fixture
def configured(tmp_path):
    """:func:`logs.configure` on a file in ``tmp_path``; the logging setup restored afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("quotewise")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    yield logs.configure(tmp_path / "engine.log")
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def lines(path) -> list[str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text().splitlines()


def test_a_record_is_one_line_with_time_level_logger_message_and_context(configured, capsys):
    logs.configure(configured)  # its stderr now: capsys's
    logging.getLogger("quotewise.live.engine").info(
        "maker started", extra=logs.kv(maker="mm-abc123", data="a file.gz", speed=2.0)
    )
    [line] = lines(configured)
    match = LINE.match(line)
    assert match is not None, line
    expected = 'INFO quotewise.live.engine maker started maker=mm-abc123 data="a file.gz" speed=2.0'
    assert match["rest"] == expected
    assert capsys.readouterr().err.splitlines() == [line]  # the same line on stderr


def test_an_exception_is_followed_by_its_traceback(configured):
    try:
        raise ValueError("bad tick")
    except ValueError as exc:
        logger = logging.getLogger("quotewise.live.engine")
        logger.error("maker failed", exc_info=exc, extra=logs.kv(maker="m"))
    text = lines(configured)
    assert text[0].endswith("ERROR quotewise.live.engine maker failed maker=m")
    assert text[1] == "Traceback (most recent call last):" and text[-1] == "ValueError: bad tick"


def test_ours_from_info_libraries_from_warning_and_configured_twice_writes_once(configured):
    logs.configure(configured)  # again (a second serve() in one process): replaces, does not add
    logging.getLogger("quotewise.live.engine").info("ours")
    logging.getLogger("somelibrary").info("chatter")
    logging.getLogger("uvicorn.error").warning("port in use")
    assert [LINE.match(line)["rest"] for line in lines(configured)] == [
        "INFO quotewise.live.engine ours",
        "WARNING uvicorn.error port in use",
    ]


def test_the_engines_log_is_in_the_user_data_directory(tmp_path, monkeypatch):
    from quotewise.live import paths

    monkeypatch.setenv("QUOTEWISE_HOME", str(tmp_path))
    assert paths.log_path() == tmp_path / "data" / "engine.log"
