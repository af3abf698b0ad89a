"""One run, many processes: workers join the parent's recording and never clobber its file.

Real ``multiprocessing`` pools (fork and spawn) running ``examples/workers.py``,
and plain subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rerun_logging.format import Record, RecordingInfo
from rerun_logging.viewer.feed import read_message

from .conftest import ROOT, child_env, feed_of, read_messages, run_python

WORKERS = str(ROOT / "examples" / "workers.py")


def recordings_in(folder: Path) -> dict[str, tuple[RecordingInfo, list[Record]]]:
    out = {}
    for path in sorted([*folder.glob("*.rlg"), *folder.glob("*.rrd")]):  # ours, and named so
        messages = read_messages(path)
        assert isinstance(messages[0], RecordingInfo)
        out[path.name] = (messages[0], [m for m in messages if isinstance(m, Record)])
    return out


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_save_into_one_recording_beside_the_parent(tmp_path: Path, method: str) -> None:
    result = subprocess.run(
        [sys.executable, WORKERS, "--start-method", method, "--workers", "3", "--items", "30"],
        cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    files = recordings_in(tmp_path)
    parent_info, parent_records = files.pop("workers.rlg")
    assert [r.message.split(" (")[0] for r in parent_records] == ["starting 3 workers", "sum of squares 8555"]
    assert files and all(name == f"workers.{info.pid}.rlg" for name, (info, _) in files.items())
    assert {info.recording_id for info, _ in files.values()} == {parent_info.recording_id}
    items = sorted(r.extras["item"] for _, records in files.values() for r in records)
    assert items == list(range(30))
    for info, records in files.values():  # a worker that got no item may have no record
        assert {r.process for r in records} <= {info.pid} != {parent_info.pid}


def test_spawn_workers_stream_into_the_parents_served_page(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    script = tmp_path / "served_workers.py"
    script.write_text(textwrap.dedent("""
        import logging, multiprocessing, sys
        import rerun_logging
        SINK = "serve:127.0.0.1:0"
        def configure():
            logging.getLogger().setLevel(logging.INFO)
            handler = rerun_logging.RerunHandler(SINK, application_id="served-workers", open_browser=False)
            logging.getLogger().addHandler(handler)
            return handler
        def work(item):
            logging.getLogger("worker").info("item %d", item, extra={"item": item})
        if __name__ == "__main__":
            handler = configure()
            handler.start()
            print(handler.url, flush=True)
            with multiprocessing.get_context("spawn").Pool(2, initializer=configure) as pool:
                pool.map(work, range(20))
                pool.close()
                pool.join()
            sys.stdin.readline()  # keep serving until the test has read the page
    """))
    app = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=child_env(), text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert app.stdout is not None and app.stdin is not None
    try:
        url = app.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        ws_url, origin = feed_of(url)
        items: list[int] = []
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        with connect(ws_url, origin=origin) as ws:
            while len(items) < 20:
                message = read_message(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
                if message["type"] == "records":
                    items += [e["item"] for e in message["extras"] if e and "item" in e]
                    pids.add(message["pid"])
        assert sorted(items) == list(range(20))
        assert len(pids) >= 1 and app.pid not in pids
        app.stdin.write("\n")
        app.stdin.flush()
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
        for stream in (app.stdin, app.stdout, app.stderr):
            if stream is not None:
                stream.close()


def test_an_unrelated_child_with_its_own_file_is_left_alone(tmp_path: Path) -> None:
    child = "import logging, rerun_logging; h = rerun_logging.RerunHandler('save:child.rrd'); " \
            "logging.getLogger().addHandler(h); logging.getLogger().warning('from the child')"
    code = textwrap.dedent(f"""
        import logging, subprocess, sys, rerun_logging
        logging.getLogger().addHandler(rerun_logging.RerunHandler("save:parent.rrd"))
        logging.getLogger().warning("from the parent")
        subprocess.run([sys.executable, "-c", {child!r}], check=True)
    """)
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = recordings_in(tmp_path)
    assert sorted(files) == ["child.rrd", "parent.rrd"]
    assert files["child.rrd"][0].recording_id == files["parent.rrd"][0].recording_id


def test_every_file_a_process_saves_is_claimed_for_its_children(tmp_path: Path) -> None:
    """Two handlers, two files: a child saving to either writes beside it, not over it."""
    child = ("import logging, rerun_logging; h = rerun_logging.RerunHandler('save:b.rrd'); "
             "logging.getLogger().addHandler(h); logging.getLogger().warning('from the child')")
    code = textwrap.dedent(f"""
        import logging, subprocess, sys, rerun_logging
        for path in ("a.rrd", "b.rrd"):
            logging.getLogger().addHandler(rerun_logging.RerunHandler("save:" + path))
        logging.getLogger().warning("from the parent")
        done = subprocess.run([sys.executable, "-c", {child!r}], check=True)
    """)
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = recordings_in(tmp_path)
    (beside,) = [name for name in files if name.startswith("b.") and name != "b.rrd"]
    assert [r.message for r in files["b.rrd"][1]] == ["from the parent"]
    assert [r.message for r in files[beside][1]] == ["from the child"]
    assert beside == f"b.{files[beside][0].pid}.rrd"
