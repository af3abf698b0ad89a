"""The spawned viewer's log in the shared temporary directory (issue 11, item 9), and the
serve sink's report (item 13: its children's TCP port is not printed)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from rerun_logging.backoff import Backoff
from rerun_logging.sinks import spawn
from rerun_logging.sinks.serve import ServeSink
from rerun_logging.viewer.events import Listening, WebUIStarted

PORT = 4321


@pytest.fixture
def tmpdir_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tempfile.gettempdir()`` is the test's own directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def opened(said: list[str]) -> tuple[Path, int]:
    fd, path = spawn.open_viewer_log(PORT, said.append)
    try:
        os.write(fd, b"viewer line\n")
        return Path(path), os.fstat(fd).st_mode
    finally:
        os.close(fd)


def test_the_log_is_created_for_us_only(tmpdir_is: Path) -> None:
    said: list[str] = []
    path, mode = opened(said)
    assert path == tmpdir_is / f"rerun-logging-viewer-{PORT}.log" and said == []
    assert stat.S_IMODE(mode) == 0o600
    opened(said)  # appended to on the next spawn
    assert path.read_bytes() == b"viewer line\n" * 2


def test_a_planted_symlink_is_not_followed(tmpdir_is: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    target.write_bytes(b"precious\n")
    Path(spawn.viewer_log_path(PORT)).symlink_to(target)
    said: list[str] = []
    path, mode = opened(said)
    assert target.read_bytes() == b"precious\n"
    assert path.name.startswith(f"rerun-logging-viewer-{PORT}-") and path.parent == tmpdir_is
    assert path.read_bytes() == b"viewer line\n" and stat.S_IMODE(mode) == 0o600
    assert said == [f"not logging the viewer to {spawn.viewer_log_path(PORT)} (it is a symbolic "
                    f"link); it logs to {path}"]


def test_a_hard_link_is_not_appended_to(tmpdir_is: Path, tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_bytes(b"precious\n")
    os.link(target, spawn.viewer_log_path(PORT))
    said: list[str] = []
    path, _ = opened(said)
    assert target.read_bytes() == b"precious\n" and path != Path(spawn.viewer_log_path(PORT))
    assert "(it has 2 links)" in said[0]


@pytest.mark.skipif(os.getuid() != 0, reason="making a file of another user needs root")
def test_another_users_file_is_not_appended_to(tmpdir_is: Path) -> None:
    planted = Path(spawn.viewer_log_path(PORT))
    planted.write_bytes(b"theirs\n")
    os.chown(planted, 54321, 54321)
    said: list[str] = []
    path, _ = opened(said)
    assert planted.read_bytes() == b"theirs\n" and path != planted
    assert "(it belongs to user 54321)" in said[0]


def test_our_own_older_log_is_kept_and_closed_to_others(tmpdir_is: Path) -> None:
    older = Path(spawn.viewer_log_path(PORT))
    older.write_bytes(b"old\n")
    older.chmod(0o644)
    said: list[str] = []
    path, mode = opened(said)
    assert path == older and said == [] and stat.S_IMODE(mode) == 0o600
    assert older.read_bytes() == b"old\nviewer line\n"


def test_without_any_safe_file_the_output_is_discarded(tmpdir_is: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(spawn.viewer_log_path(PORT)).symlink_to("/nonexistent")

    def refuse(**_: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    said: list[str] = []
    fd, path = spawn.open_viewer_log(PORT, said.append)
    os.close(fd)
    assert path == os.devnull and "its output is discarded" in said[0]


def test_the_serve_sink_does_not_print_its_childrens_port(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ServeSink("127.0.0.1", 0, 1024, Backoff(0.1, 2.0, 1.0))
    sink._event(Listening("127.0.0.1:41234"))
    sink._event(WebUIStarted("http://127.0.0.1:9090/"))
    err = capsys.readouterr().err
    assert "41234" not in err and "web UI on http://127.0.0.1:9090/" in err
