"""rerun: a real RerunHandler and logging into real Rerun recordings, read back with the
installed ``rerun`` CLI (``rrd verify``, ``rrd print``) and rerun-sdk's own RRD reader."""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("rerun", reason="needs the rerun-logging[rerun] extra (rerun-sdk)")

from rerun.chunk import RrdReader  # noqa: E402

from rerun_logging import RerunHandler, SinkSpecError  # noqa: E402
from rerun_logging.sinks import mode_of  # noqa: E402
from rerun_logging.sinks.rerun import RerunSink, Target  # noqa: E402
from rerun_logging.spec import parse_one, parse_sinks  # noqa: E402

from .conftest import child_env, free_port, read_messages, run_python  # noqa: E402

RERUN_CLI = shutil.which("rerun", path=os.path.dirname(sys.executable)) or shutil.which("rerun")
WAIT = 20.0


def rerun_cli(*args: str) -> subprocess.CompletedProcess[str]:
    if RERUN_CLI is None:
        pytest.skip("the rerun CLI (rerun-sdk) is not on PATH")
    return subprocess.run(
        [RERUN_CLI, *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "RERUN_ANALYTICS": "0"},
    )


def rows_of(path: Path | str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every entity in the Rerun file ``path`` (log_time as int ns)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with warnings.catch_warnings():  # a file still being written has no footer yet
        warnings.simplefilter("ignore")
        chunks = list(RrdReader(str(path)).stream())
    for chunk in chunks:
        table = chunk.to_record_batch()
        if "log_time" in table.schema.names:
            index = table.schema.get_field_index("log_time")
            table = table.set_column(index, "log_time", table.column("log_time").cast("int64"))
        rows.setdefault(chunk.entity_path, []).extend(table.to_pylist())
    return rows


def recordings_of(path: Path | str) -> list[Any]:
    with warnings.catch_warnings():  # a file still being written has no footer yet
        warnings.simplefilter("ignore")
        return RrdReader(str(path)).recordings()


def first(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return value[0] if value else None


# --- the grammar ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "rerun", "rerun:save:/tmp/x.rrd", "rerun:spawn", "rerun:spawn:9877", "rerun:connect",
    "rerun:connect:rerun+http://10.0.0.2:9876/proxy", "rerun:serve", "rerun:serve:9000",
])
def test_every_form_parses_and_prints_back(text: str) -> None:
    (spec,) = parse_sinks(text)
    assert spec.mode == "rerun" and str(spec) == text
    assert parse_one(str(spec)) == spec


@pytest.mark.parametrize("text, words", [
    ("rerun:save", "needs a path"), ("rerun:save:  ", "needs a path"),
    ("rerun:nope", "unknown rerun sink"), ("rerun:connect:http://x:1", "gRPC URLs start with"),
    ("rerun:spawn:abc", "bad port"), ("rerun:serve:70000", "out of range"),
])
def test_bad_forms_are_refused_naming_the_grammar(text: str, words: str) -> None:
    with pytest.raises(SinkSpecError, match=words):
        parse_sinks(text)


def test_run_hands_children_an_absolute_save_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_one("rerun:save:out.rrd")
    assert mode_of(spec).for_run(spec) == f"rerun:save:{tmp_path / 'out.rrd'}"
    assert mode_of(spec).saved_file(spec) == "out.rrd"
    assert mode_of(parse_one("rerun:connect")).for_run(parse_one("rerun:connect")) == "rerun:connect"


# --- save: a real .rrd ------------------------------------------------------------------


def test_save_holds_every_record_with_its_components(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "run.rrd"
    handler = RerunHandler(f"rerun:save:{path}", application_id="shop", recording_id="rid-save")
    logger.addHandler(handler)
    child = logging.getLogger(f"{logger.name}.db")
    for i in range(300):
        child.info("order %d", i, extra={"order_id": i, "amount": i / 4, "user": f"u{i % 3}"})
    try:
        {}["missing"]
    except KeyError:
        child.exception("lookup failed", extra={"order_id": -1})
    logger.warning("top level")
    handler.close()
    stats = handler.stats.sinks[0]
    assert (stats.written, stats.dropped, stats.pending) == (302, 0, 0)

    assert rerun_cli("rrd", "verify", str(path)).returncode == 0
    printed = rerun_cli("rrd", "print", str(path))
    assert printed.returncode == 0 and "shop" in printed.stdout and "rid-save" in printed.stdout
    assert (recordings_of(path)[0].application_id, recordings_of(path)[0].recording_id) == ("shop", "rid-save")

    rows = rows_of(path)
    entity = "/logs/" + child.name.replace(".", "/")
    logs = sorted(rows[entity], key=lambda r: r["log_seq"])
    assert len(logs) == 301
    assert [first(r, "TextLog:text") for r in logs[:3]] == ["order 0", "order 1", "order 2"]
    assert [first(r, "order_id") for r in logs] == [*range(300), -1]
    assert first(logs[5], "amount") == 1.25 and first(logs[5], "user") == "u2"
    assert first(logs[5], "TextLog:level") == "INFO"
    assert first(logs[5], "LogRecord:template") == "order %d"
    assert first(logs[5], "LogRecord:logger") == child.name
    assert first(logs[5], "LogRecord:threadName") == "MainThread"
    assert first(logs[5], "LogRecord:process") == os.getpid()
    assert first(logs[5], "LogRecord:pathname") == __file__
    assert first(logs[5], "LogRecord:funcName") == "test_save_holds_every_record_with_its_components"
    failed = logs[-1]
    assert first(failed, "TextLog:level") == "ERROR" and first(failed, "LogRecord:exc_type") == "KeyError"
    assert "Traceback" in first(failed, "LogRecord:exc_text") and "{}[\"missing\"]" in first(failed, "LogRecord:exc_text")
    assert logs[0]["log_time"] <= logs[-1]["log_time"] and logs[0]["log_time"] > 1_600_000_000 * 10**9
    (top,) = rows["/logs/" + logger.name.replace(".", "/")]
    assert first(top, "TextLog:level") == "WARN" and top["log_seq"] == 301


def test_dictconfig_and_the_environment_choose_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured, overridden = tmp_path / "dict.rrd", tmp_path / "env.rrd"
    config = {
        "version": 1,
        "handlers": {"rerun": {
            "class": "rerun_logging.RerunHandler", "sink": f"rerun:save:{configured}",
            "application_id": "dictapp", "entity_prefix": "robot",
        }},
        "loggers": {"tests.dict": {"handlers": ["rerun"], "level": "INFO", "propagate": False}},
    }
    logging.config.dictConfig(config)
    logging.getLogger("tests.dict").info("from dictConfig")
    handler = logging.getLogger("tests.dict").handlers[0]
    handler.close()
    logging.getLogger("tests.dict").removeHandler(handler)
    rows = rows_of(configured)
    assert [first(r, "TextLog:text") for r in rows["/robot/tests/dict"]] == ["from dictConfig"]

    monkeypatch.setenv("RERUN_LOGGING_SINK", f"rerun:save:{overridden}")
    handler = RerunHandler("memory", application_id="envapp")
    assert [str(s) for s in handler.sinks] == [f"rerun:save:{overridden}"]
    record = logging.LogRecord("tests.env", logging.INFO, __file__, 1, "from the env", None, None)
    handler.handle(record)
    handler.close()
    assert [first(r, "TextLog:text") for r in rows_of(overridden)["/logs/tests/env"]] == ["from the env"]


def test_a_missing_directory_counts_every_record_dropped(tmp_path: Path, logger: logging.Logger,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    handler = RerunHandler(f"rerun:save:{tmp_path / 'no' / 'such' / 'run.rrd'}")
    logger.addHandler(handler)
    for i in range(5):
        logger.info("lost %d", i)
    handler.close()
    stats = handler.stats.sinks[0]
    assert (stats.written, stats.dropped, stats.pending) == (0, 5, 0)
    err = capfd.readouterr().err
    assert err.count("records are dropped (counted)") == 1


# --- rerun: the app's current recording -------------------------------------------------


BESIDE_AN_IMAGE = """
import logging, sys
import numpy as np
import rerun as rr
from rerun_logging import RerunHandler
rr.init("camapp", recording_id="cam-1")
rr.save(sys.argv[1])
handler = RerunHandler("rerun", application_id="ignored")
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
logging.getLogger("vision.detector").info("before the image", extra={"frame": 0})
rr.log("camera", rr.Image(np.zeros((4, 6, 3), dtype=np.uint8)))
for i in range(1, 500):
    logging.getLogger("vision.detector").info("frame %d", i, extra={"frame": i})
# no close: the records must survive the exit (rerun-sdk's atexit runs before logging's)
"""


def test_rerun_logs_into_the_apps_recording_beside_its_image(tmp_path: Path) -> None:
    path = tmp_path / "app.rrd"
    done = subprocess.run(
        [sys.executable, "-c", BESIDE_AN_IMAGE, str(path)], env=child_env(), capture_output=True,
        text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert rerun_cli("rrd", "verify", str(path)).returncode == 0
    (recording,) = recordings_of(path)
    assert (recording.application_id, recording.recording_id) == ("camapp", "cam-1")
    rows = rows_of(path)
    (image,) = rows["/camera"]
    logs = sorted(rows["/logs/vision/detector"], key=lambda r: r["log_seq"])
    assert [first(r, "frame") for r in logs] == list(range(500))
    # one timeline: the image's log_time falls between the records logged around it
    assert logs[0]["log_time"] <= image["log_time"] <= logs[1]["log_time"]


OWN_RECORDING_FIRST = """
import logging, sys
import rerun as rr
from rerun_logging import RerunHandler
handler = RerunHandler("rerun", application_id="mine", recording_id="mine-1")
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
logging.getLogger("early").info("before any rerun call")
handler.flush()
rec = rr.get_global_data_recording()
print("GLOBAL", rec.get_recording_id(), rr.get_application_id(recording=rec))
rr.save(sys.argv[1])  # the app attaches a sink to the (our) global recording later
logging.getLogger("early").info("after save")
handler.close()
"""


def test_without_an_app_recording_ours_becomes_the_global_one(tmp_path: Path) -> None:
    path = tmp_path / "own.rrd"
    done = subprocess.run(
        [sys.executable, "-c", OWN_RECORDING_FIRST, str(path)], env=child_env(),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "GLOBAL mine-1 mine" in done.stdout
    rows = rows_of(path)
    assert [first(r, "TextLog:text") for r in rows["/logs/early"]] == ["before any rerun call", "after save"]


# --- connect: a real Rerun gRPC server --------------------------------------------------


@contextlib.contextmanager
def running_rerun_server(port: int, saved: Path) -> Iterator[str]:
    """A headless Rerun server (``rerun --port P --save FILE``) saving what it receives,
    listening once this enters; yields its URL."""
    if RERUN_CLI is None:
        pytest.skip("the rerun CLI (rerun-sdk) is not on PATH")
    process = subprocess.Popen(
        [RERUN_CLI, "--port", str(port), "--bind", "127.0.0.1", "--save", str(saved)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RERUN_ANALYTICS": "0"},
    )
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"rerun+http://127.0.0.1:{port}/proxy"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def rerun_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    saved = tmp_path / "server.rrd"
    with running_rerun_server(free_port(), saved) as url:
        yield url, saved


def wait_for_rows(path: Path, entity: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = rows_of(path).get(entity, [])
        except Exception:
            rows = []
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    return rows


def test_connect_streams_to_a_real_rerun_server(rerun_server: tuple[str, Path], logger: logging.Logger) -> None:
    url, saved = rerun_server
    handler = RerunHandler(f"rerun:connect:{url}", application_id="netapp", recording_id="net-1")
    logger.addHandler(handler)
    for i in range(50):
        logger.info("net %d", i, extra={"i": i})
    handler.close()
    assert handler.stats.sinks[0].written == 50
    rows = wait_for_rows(saved, "/logs/" + logger.name.replace(".", "/"), 50)
    assert sorted(first(r, "i") for r in rows) == list(range(50))
    (recording,) = recordings_of(saved)
    assert (recording.application_id, recording.recording_id) == ("netapp", "net-1")


def test_with_no_server_records_are_dropped_and_the_exit_is_not_held() -> None:
    """rerun-sdk's gRPC client, made for a server that is not there, waits 5 s to
    connect and 5 s more to end (and a daemon thread left inside it at exit aborts the
    process): ours makes none until a server answers, so close and exit wait for neither."""
    code = textwrap.dedent(f"""
        import atexit, logging, time
        # Registered before rerun-sdk and ours register theirs: at exit it runs after them.
        atexit.register(lambda: print("EXITED", time.monotonic() - started, flush=True))
        from rerun_logging import RerunHandler
        handler = RerunHandler("rerun:connect:rerun+http://127.0.0.1:{free_port()}/proxy",
                               flush_timeout=1.0)
        log = logging.getLogger("nobody"); log.addHandler(handler); log.setLevel(logging.INFO)
        started = time.monotonic()
        for i in range(100):
            log.info("nobody listens %d", i)
        logged = time.monotonic() - started
        handler.close()
        s = handler.stats.sinks[0]
        print("TIMES", logged, time.monotonic() - started, s.written, s.dropped, s.pending)
    """)
    done = run_python(code, timeout=120)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("TIMES")]
    _, logged, closed, written, dropped, pending = line.split()
    assert float(logged) < 0.5 and float(closed) < 3.0
    assert (written, dropped, pending) == ("0", "100", "0")
    assert "no Rerun server at 127.0.0.1:" in done.stderr
    (exited,) = [line for line in done.stdout.splitlines() if line.startswith("EXITED")]
    assert float(exited.split()[1]) < 3.0, "rerun-sdk's exit waited for a client"


def test_records_reach_a_server_that_starts_later(tmp_path: Path, logger: logging.Logger) -> None:
    """Dropped (counted) while nothing listens; delivered once a server answers the probe,
    and the drop shows in the recording as a WARN row."""
    port, saved = free_port(), tmp_path / "later.rrd"
    handler = RerunHandler(f"rerun:connect:rerun+http://127.0.0.1:{port}/proxy")
    logger.addHandler(handler)
    logger.info("before the server")
    handler.flush()
    assert handler.stats.sinks[0].dropped == 1
    with running_rerun_server(port, saved):
        deadline = time.monotonic() + WAIT
        i = 0
        while handler.stats.sinks[0].written == 0 and time.monotonic() < deadline:
            logger.info("after %d", i)
            i += 1
            handler.flush()
            time.sleep(0.1)
        logger.info("last")
        handler.close()
        stats = handler.stats.sinks[0]
        assert stats.written >= 2 and stats.written + stats.dropped == i + 2
        rows = wait_for_rows(saved, "/logs/" + logger.name.replace(".", "/"), stats.written)
        texts = [first(r, "TextLog:text") for r in rows]
        assert "last" in texts and "before the server" not in texts
        warn = wait_for_rows(saved, "/logs/rerun_logging", 1)
        assert any("no Rerun server" in str(first(r, "TextLog:text")) for r in warn)


# --- fork, exit, imports ---------------------------------------------------------------


FORK = """
import logging, os, sys
from rerun_logging import RerunHandler
path = sys.argv[1]
handler = RerunHandler(f"rerun:save:{path}", application_id="forks", recording_id="fork-1")
log = logging.getLogger("forks"); log.addHandler(handler); log.setLevel(logging.INFO); log.propagate = False
log.info("parent before")
handler.flush()
pid = os.fork()
if pid == 0:
    for i in range(20):
        log.info("child %d", i)
    handler.close()
    s = handler.stats.sinks[0]
    print("CHILD", os.getpid(), s.name, s.written, s.dropped, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
log.info("parent after")
handler.close()
s = handler.stats.sinks[0]
print("PARENT", s.written, s.dropped)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_saves_beside_and_never_into_the_parents_file(tmp_path: Path) -> None:
    path = tmp_path / "run.rrd"
    done = subprocess.run(
        [sys.executable, "-c", FORK, str(path)], env=child_env(), capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (child_line,) = [line for line in done.stdout.splitlines() if line.startswith("CHILD")]
    _, pid, name, written, dropped = child_line.split()
    child_file = tmp_path / f"run.{pid}.rrd"
    assert name == f"rerun:save:{child_file}" and (written, dropped) == ("20", "0")
    assert "PARENT 2 0" in done.stdout
    assert rerun_cli("rrd", "verify", str(path)).returncode == 0
    assert rerun_cli("rrd", "verify", str(child_file)).returncode == 0
    parent = [first(r, "TextLog:text") for r in rows_of(path)["/logs/forks"]]
    assert sorted(parent) == ["parent after", "parent before"]
    child = [first(r, "TextLog:text") for r in rows_of(child_file)["/logs/forks"]]
    assert sorted(child, key=lambda t: int(t.split()[1])) == [f"child {i}" for i in range(20)]
    (recording,) = recordings_of(child_file)
    assert recording.recording_id == "fork-1"  # Rerun shows both files as one recording


@pytest.mark.parametrize("target", ["save", "connect", "current"])
def test_our_threads_never_import(tmp_path: Path, target: str, request: pytest.FixtureRequest) -> None:
    spec = {
        "save": lambda: f"rerun:save:{tmp_path / 'i.rrd'}",
        "connect": lambda: f"rerun:connect:{request.getfixturevalue('rerun_server')[0]}",
        "current": lambda: "rerun",
    }[target]()
    code = textwrap.dedent(f"""
        import logging, sys, threading
        imported = []
        class Watch:
            def find_spec(self, name, path=None, target=None):
                if threading.current_thread().name.startswith("rerun-logging"):
                    imported.append((threading.current_thread().name, name))
                return None
        from rerun_logging import RerunHandler
        handler = RerunHandler("{spec}", flush_timeout=1.0)
        sys.meta_path.insert(0, Watch())
        log = logging.getLogger("imports"); log.addHandler(handler); log.setLevel(logging.INFO)
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("with a traceback", extra={{"a": [1, 2], "b": b"x", "c": 1.5}})
        log.info("plain")
        handler.close()
        print("IMPORTED", imported, handler.stats.sinks[0].written)
    """)
    done = run_python(code, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "IMPORTED [] 2" in done.stdout, done.stdout + done.stderr


def test_run_instruments_a_program_into_a_rerun_file(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("import logging\nlogging.getLogger('app.main').warning('hello from run')\n")
    path = tmp_path / "run.rrd"
    done = subprocess.run(
        [sys.executable, "-m", "rerun_logging", "run", "--sink", f"rerun:save:{path}", "--",
         sys.executable, str(script)],
        env=child_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = rows_of(path)
    assert [first(r, "TextLog:text") for r in rows["/logs/app/main"]] == ["hello from run"]


BLOCK_RERUN = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "rerun" or name.startswith(("rerun.", "rerun_bindings")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def test_without_the_extra_a_rerun_spec_is_refused_in_one_line() -> None:
    code = BLOCK_RERUN + textwrap.dedent("""
        import os, sys
        import rerun_logging
        from rerun_logging import RerunHandler, SinkSpecError
        print("LOADED", sorted(m for m in sys.modules if m == "rerun" or m.startswith("rerun.")))
        try:
            RerunHandler("rerun:save:unused.rrd")
        except SinkSpecError as error:
            assert isinstance(error, ImportError) and isinstance(error, ValueError)
            print("ERROR", error)
        os.environ["RERUN_LOGGING_SINK"] = "rerun"
        handler = RerunHandler("memory")
        print("SINKS", [str(s) for s in handler.sinks])
        handler.close()
    """)
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (error,) = [line for line in lines if line.startswith("ERROR")]
    assert "rerun-logging[rerun]" in error and "pip install" in error
    assert "LOADED []" in lines and "SINKS ['memory']" in lines
    assert done.stderr.count("RERUN_LOGGING_SINK") == 1 and "rerun-logging[rerun]" in done.stderr


def test_import_rerun_logging_never_imports_rerun() -> None:
    done = run_python(
        "import sys, rerun_logging, rerun_logging.sinks\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rerun', 'rerun_bindings', 'pyarrow')))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_after_fork_targets() -> None:
    sink = RerunSink(Target("save", path="/tmp/x/run.rrd"))
    assert sink.after_fork().target == Target("save", path=f"/tmp/x/run.{os.getpid()}.rrd")  # type: ignore[attr-defined]
    for kind in ("spawn", "serve"):
        child = RerunSink(Target(kind, port=9999)).after_fork()
        assert child.target == Target("connect", url="rerun+http://127.0.0.1:9999/proxy")  # type: ignore[attr-defined]
    assert RerunSink(Target("current")).after_fork().target == Target("current")  # type: ignore[attr-defined]


SERVING = """
import logging, sys
from rerun_logging import RerunHandler
handler = RerunHandler(f"rerun:serve:{sys.argv[1]}", application_id="served", recording_id="served-1",
                       open_browser=False)
log = logging.getLogger("served.app"); log.addHandler(handler); log.setLevel(logging.INFO)
for i in range(25):
    log.info("served %d", i, extra={"i": i})
handler.flush()
print("READY", handler.url, flush=True)
sys.stdin.read()  # serve until the test is done reading
handler.close()
print("CLOSED", handler.stats.sinks[0].written, flush=True)
"""


def test_serve_hosts_a_rerun_grpc_server_a_real_viewer_reads(tmp_path: Path) -> None:
    if RERUN_CLI is None:
        pytest.skip("the rerun CLI (rerun-sdk) is not on PATH")
    port, reader_port = free_port(), free_port()
    app = subprocess.Popen(
        [sys.executable, "-c", SERVING, str(port)], env=child_env(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    reader = None
    try:
        assert app.stdout is not None and app.stdin is not None
        ready = app.stdout.readline()
        assert ready.startswith("READY"), app.stderr.read() if app.stderr else ""
        url = ready.split()[1]  # handler.url: Rerun's web viewer (None when 9090 is taken)
        assert url == "None" or url.startswith("http://127.0.0.1:9090/?url=rerun+http://")
        saved = tmp_path / "read.rrd"
        # a real Rerun process connects to the app's server and saves what it is sent
        reader = subprocess.Popen(
            [RERUN_CLI, "--port", str(reader_port), "--bind", "127.0.0.1", "--save", str(saved),
             f"rerun+http://127.0.0.1:{port}/proxy"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RERUN_ANALYTICS": "0"},
        )
        rows = wait_for_rows(saved, "/logs/served/app", 25)
        assert sorted(first(r, "i") for r in rows) == list(range(25))
        (recording,) = recordings_of(saved)
        assert (recording.application_id, recording.recording_id) == ("served", "served-1")
        app.stdin.close()
        app.wait(60)
        assert "CLOSED 25" in app.stdout.read()
    finally:
        for process in (reader, app):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_drop_reports_in_frames_become_warn_rows(tmp_path: Path) -> None:
    from rerun_logging import format

    path = tmp_path / "drops.rrd"
    sink = RerunSink(Target("save", path=str(path)))
    info = format.RecordingInfo("drops", "drops-1", 1, "host", 2, "3.11", "0.1")
    sink.start(format.stream_header(info))
    sink.write(format.encode_frame(format.dropped_message(3, "queue full: the flusher fell behind")), 0)
    sink.close(format.encode_frame(format.end_message()), time.monotonic() + 5)
    (row,) = rows_of(path)["/logs/rerun_logging"]
    assert first(row, "TextLog:level") == "WARN"
    assert first(row, "rerun_logging:dropped_count") == 3
    assert first(row, "rerun_logging:dropped_reason") == "queue full: the flusher fell behind"
    assert (sink.written, sink.dropped) == (0, 0)


class Keeping(logging.Handler):
    """Keeps what ``capture`` takes of each record inside ``emit``, as RerunHandler does."""

    def __init__(self) -> None:
        super().__init__()
        self.captured: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        from rerun_logging.capture import capture

        self.captured.append(capture(record))


def test_a_batch_read_without_its_frame_makes_the_same_rerun_file(tmp_path: Path, logger: logging.Logger) -> None:
    """The flusher hands the rerun sink its batches already read (no decode of the
    frame); the file must be the one the frame gives, with every odd field."""
    from rerun_logging import format
    from rerun_logging.capture import record_batch

    keeping = Keeping()
    logger.addHandler(keeping)
    db = logging.getLogger(f"{logger.name}.db")
    for i in range(50):
        db.info("order %d of %s", i, "u\udc80", extra={"n": i, "ok": i % 2 == 0, "big": 2**63 - 1})
    logger.info({"event": "dict message", "n": 1})
    logger.warning("with a list %s", [1, 2], extra={"tags": ["a", "b"], "when": 1.5}, stack_info=True)
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("failed %d%%", 5)
    encoded = record_batch(keeping.captured, 0)
    assert encoded.args_exact and format.pack_extras_exactly(encoded.extras) is not None
    payload = format.records_message(encoded.columns, format.pack_extras(encoded.extras))
    drop = format.Dropped(2, "queue full: the flusher fell behind")
    frame = format.encode_frame(format.dropped_message(drop.count, drop.reason) + payload)
    read = format.columns_as_read(encoded.columns, encoded.args, encoded.extras)
    header = format.stream_header(format.RecordingInfo("same", "same-1", 1, "host", 2, "3.11", "0.1"))
    paths = [tmp_path / "frame.rrd", tmp_path / "read.rrd"]
    for path, deliver in zip(paths, ["write", "write_columns"]):
        sink = RerunSink(Target("save", path=str(path)))
        sink.start(header)
        if deliver == "write":
            sink.write(frame, len(keeping.captured))
        else:
            sink.write_columns([drop, read], len(keeping.captured))
        sink.close(format.encode_frame(format.end_message()), time.monotonic() + 10)
        assert (sink.written, sink.dropped) == (53, 0)
    by_frame, by_columns = (
        {  # Rerun's row ids, the recording's start and when a drop was written differ
            entity: [
                {k: v for k, v in row.items() if k != "rerun.controls.RowId"
                 and not (k == "log_time" and entity == "/logs/rerun_logging")}
                for row in rows
            ]
            for entity, rows in rows_of(path).items() if entity != "/__properties"
        }
        for path in paths
    )
    assert by_columns == by_frame and len(by_columns) == 3
    logs = sorted(by_columns["/logs/" + db.name.replace(".", "/")], key=lambda r: r["log_seq"])
    assert [first(r, "TextLog:text") for r in logs[:2]] == ["order 0 of u\\udc80", "order 1 of u\\udc80"]
    assert [first(r, "big") for r in logs[:2]] == [2**63 - 1] * 2
    assert first(by_columns["/logs/rerun_logging"][0], "rerun_logging:dropped_count") == 2


def test_a_live_batch_with_a_capped_extra_still_reaches_the_file(tmp_path: Path, logger: logging.Logger) -> None:
    """A batch that does not pack exactly (an extra over the cap, an int past 64 bits)
    goes to the sink as its frame, and arrives as any reader reads it."""
    from rerun_logging.format import MAX_FIELD_CHARS, TRUNCATION_MARK

    path = tmp_path / "capped.rrd"
    handler = RerunHandler(f"rerun:save:{path}")
    logger.addHandler(handler)
    logger.info("huge", extra={"blob": "x" * (MAX_FIELD_CHARS + 10), "huge_int": 2**64})
    logger.info("n=%d", 2**64)
    handler.close()
    assert handler.stats.sinks[0].written == 2
    huge, n = sorted(rows_of(path)["/logs/" + logger.name.replace(".", "/")], key=lambda r: r["log_seq"])
    blob = first(huge, "blob")
    assert blob.startswith("x" * 1000) and TRUNCATION_MARK.format(10) in blob
    assert first(huge, "huge_int") == str(2**64)
    assert first(n, "TextLog:text") == f"n={2**64}"


def test_a_handler_with_a_file_beside_the_rerun_sink_fills_both(tmp_path: Path, logger: logging.Logger) -> None:
    """With only sinks that read columns, batches are never packed; with a file beside
    one, every batch is framed for it too (the two paths of the flusher): each file
    holds every record, exact batches and capped ones alike."""
    from rerun_logging.format import MAX_FIELD_CHARS, Record

    ours, theirs, alone = tmp_path / "ours.rrd", tmp_path / "theirs.rrd", tmp_path / "alone.rrd"
    both = RerunHandler([f"save:{ours}", f"rerun:save:{theirs}"])
    only_rerun = RerunHandler(f"rerun:save:{alone}")
    for handler in (both, only_rerun):
        logger.addHandler(handler)
    for n in range(5):
        logger.info("order %d", n, extra={"user": "u"})
    both.flush()
    only_rerun.flush()
    logger.info("huge", extra={"blob": "x" * (MAX_FIELD_CHARS + 10)})
    for handler in (both, only_rerun):
        handler.close()
    assert [s.written for s in both.stats.sinks] == [6, 6] and only_rerun.stats.sinks[0].written == 6
    saved = [m for m in read_messages(ours) if isinstance(m, Record)]
    assert [r.message for r in saved] == [f"order {n}" for n in range(5)] + ["huge"]
    for path in (theirs, alone):
        rows = sorted(rows_of(path)["/logs/" + logger.name.replace(".", "/")], key=lambda r: r["log_seq"])
        assert [first(r, "TextLog:text") for r in rows] == [r.message for r in saved]
        assert [first(r, "user") for r in rows] == ["u"] * 5 + [None]


def test_a_frame_that_does_not_decode_is_counted_dropped(tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    from rerun_logging import format

    sink = RerunSink(Target("save", path=str(tmp_path / "bad.rrd")))
    sink.start(format.stream_header(format.RecordingInfo("bad", "bad-1", 1, "h", 2, "3.11", "0.1")))
    sink.write(b"garbage", 7)
    assert (sink.written, sink.dropped, sink.pending) == (0, 7, 0)
    assert "records are dropped (counted)" in capfd.readouterr().err


def test_rerun_off_counts_records_dropped(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import logging
        from rerun_logging import RerunHandler
        handler = RerunHandler("rerun:save:{tmp_path / 'off.rrd'}")
        log = logging.getLogger("off"); log.addHandler(handler); log.setLevel(logging.INFO)
        for i in range(4):
            log.info("nowhere %d", i)
        handler.close()
        s = handler.stats.sinks[0]
        print("STATS", s.written, s.dropped, s.pending)
    """)
    done = run_python(code, env={"RERUN": "off"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "STATS 0 4 0" in done.stdout
    assert "Rerun is disabled (RERUN=off)" in done.stderr


FORK_CONNECT = """
import logging, os, sys
from rerun_logging import RerunHandler
handler = RerunHandler(f"rerun:connect:{sys.argv[1]}", application_id="forks", recording_id="fork-net")
log = logging.getLogger("forks.net"); log.addHandler(handler); log.setLevel(logging.INFO); log.propagate = False
log.info("parent before")
handler.flush()
pid = os.fork()
if pid == 0:
    for i in range(10):
        log.info("child %d", i)
    handler.close()
    print("CHILD", handler.stats.sinks[0].written, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
log.info("parent after")
handler.close()
print("PARENT", handler.stats.sinks[0].written, flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_connects_on_its_own_into_the_same_recording(rerun_server: tuple[str, Path]) -> None:
    url, saved = rerun_server
    done = subprocess.run(
        [sys.executable, "-c", FORK_CONNECT, url], env=child_env(), capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CHILD 10" in done.stdout and "PARENT 2" in done.stdout
    rows = wait_for_rows(saved, "/logs/forks/net", 12)
    texts = sorted(first(r, "TextLog:text") for r in rows)
    assert texts == sorted(["parent before", "parent after", *(f"child {i}" for i in range(10))])
    pids = {first(r, "LogRecord:process") for r in rows}
    assert len(pids) == 2
    assert {(r.application_id, r.recording_id) for r in recordings_of(saved)} == {("forks", "fork-net")}


SPAWNING = """
import logging, sys
from rerun_logging import RerunHandler
handler = RerunHandler(f"rerun:spawn:{sys.argv[1]}", application_id="spawned", recording_id="spawned-1")
log = logging.getLogger("spawned.app"); log.addHandler(handler); log.setLevel(logging.INFO)
for i in range(15):
    log.info("spawned %d", i, extra={"i": i})
handler.close()
print("CLOSED", handler.stats.sinks[0].written, flush=True)
"""


def test_spawn_starts_the_rerun_viewer_and_streams_to_it(tmp_path: Path) -> None:
    """``rr.spawn`` runs ``rerun`` from PATH: here a wrapper that runs the real CLI without a
    window, saving what the viewer receives (there is no display to show it)."""
    if RERUN_CLI is None:
        pytest.skip("the rerun CLI (rerun-sdk) is not on PATH")
    port = free_port()
    saved = tmp_path / "viewer.rrd"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "rerun"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"[ \"$1\" = --version ] && exec {RERUN_CLI} --version\n"  # rr.spawn checks it first
        f"echo \"$@\" > {tmp_path / 'args.txt'}\n"
        f"exec {RERUN_CLI} --port {port} --bind 127.0.0.1 --save {saved}\n"
    )
    wrapper.chmod(0o755)
    env = child_env(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", RERUN_ANALYTICS="0")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:  # the viewer outlives the app: no pipes
        done = subprocess.run(
            [sys.executable, "-c", SPAWNING, str(port)], env=env, stdout=stdout, stderr=stderr,
            stdin=subprocess.DEVNULL, timeout=120,
        )
    try:
        assert done.returncode == 0, err.read_text()
        assert "CLOSED 15" in out.read_text()
        assert f"--port={port}" in (tmp_path / "args.txt").read_text()
        rows = wait_for_rows(saved, "/logs/spawned/app", 15)
        assert sorted(first(r, "i") for r in rows) == list(range(15))
    finally:
        for pid in subprocess.run(["pgrep", "-f", str(saved)], capture_output=True, text=True).stdout.split():
            os.kill(int(pid), signal.SIGINT)  # the viewer this test started (its own file in its name)
