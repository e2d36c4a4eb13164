"""The engine's files: the API token is the user's alone from the moment it exists."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from quotewise.live import paths


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_file_is_created_readable_by_the_user_only(tmp_path, monkeypatch):
    monkeypatch.setenv("QUOTEWISE_HOME", str(tmp_path))
    seen = []  # the file's mode whenever something narrows it: it must never have been wider
    real_chmod = Path.chmod

    def chmod(self: Path, mode: int, **kw: object) -> None:
        seen.append(_mode(self))
        real_chmod(self, mode, **kw)

    monkeypatch.setattr(Path, "chmod", chmod)
    umask = os.umask(0o022)  # the usual umask: a plain write would make the file world-readable
    try:
        token = paths.ensure_token()
    finally:
        os.umask(umask)
    assert {*seen, _mode(paths.token_path())} == {0o600}
    assert len(token) >= 40 and paths.token_path().read_text() == token
    assert paths.ensure_token() == token  # the next engine reads the same token, it does not replace it
