"""The ways a process ends (rerun_logging.exits): every record logged before them is kept.

Each test runs a real interpreter that logs into a real file and ends the way real
programs end: killed by SIGTERM at the default action, a server that restores the
previous handler and re-raises (uvicorn), a billiard child (Celery's pool), a
Ctrl-C while the handler waits at exit for a sink that cannot take its records.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rerun_logging import End, Record
from rerun_logging.speedups import SPEEDUPS

from .conftest import Lines, child_env, read_messages, run_python

TIMEOUT = 30.0

APP = textwrap.dedent(
    """
    import logging, signal, sys, time
    import rerun_logging

    handler = rerun_logging.RerunHandler(sys.argv[1], application_id="exits")
    log = logging.getLogger("exits")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    """
)


def start(code: str, *args: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-c", APP + textwrap.dedent(code), *args], env=child_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


def finish(process: subprocess.Popen[str]) -> int:
    try:
        return process.wait(TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()


def messages_of(path: Path) -> tuple[list[str], bool]:
    messages = read_messages(path)
    records = [m.message for m in messages if isinstance(m, Record)]
    return records, isinstance(messages[-1], End)


def test_sigterm_at_the_default_action_keeps_every_record_and_still_kills(tmp_path: Path) -> None:
    path = tmp_path / "term.rrd"
    process, lines = start(
        """
        for i in range(300):
            log.info("before the signal %d", i)
        print("ready", flush=True)
        time.sleep(TIMEOUT)
        log.info("never")
        """.replace("TIMEOUT", str(TIMEOUT)),
        f"save:{path}",
    )
    lines.first("ready")
    process.send_signal(signal.SIGTERM)
    assert finish(process) == -signal.SIGTERM  # it still dies of the signal
    records, ended = messages_of(path)
    assert records == [f"before the signal {i}" for i in range(300)]
    assert ended, "the stream has no clean end"


def test_a_server_that_restores_the_handler_and_reraises_keeps_its_last_lines(tmp_path: Path) -> None:
    """What uvicorn does: its own handler while serving, then the previous one, re-raised."""
    path = tmp_path / "server.rrd"
    process, lines = start(
        """
        stop = []
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
        log.info("serving")
        print("ready", flush=True)
        deadline = time.monotonic() + TIMEOUT
        while not stop and time.monotonic() < deadline:
            time.sleep(0.01)
        log.info("Waiting for application shutdown.")
        log.info("Application shutdown complete.")
        log.info("Finished server process")
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(stop[0])
        log.info("never")
        """.replace("TIMEOUT", str(TIMEOUT)),
        f"save:{path}",
    )
    lines.first("ready")
    process.send_signal(signal.SIGTERM)
    assert finish(process) == -signal.SIGTERM
    records, ended = messages_of(path)
    assert records == [
        "serving", "Waiting for application shutdown.", "Application shutdown complete.",
        "Finished server process",
    ]
    assert ended


def test_an_apps_own_signal_handler_is_never_replaced(tmp_path: Path) -> None:
    done = run_python(textwrap.dedent(
        f"""
        import signal, threading
        def mine(signum, frame):
            pass
        signal.signal(signal.SIGTERM, mine)
        import rerun_logging
        rerun_logging.RerunHandler("save:{tmp_path / 'own.rrd'}")
        print(signal.getsignal(signal.SIGTERM) is mine,
              signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL)
        """
    ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]  # SIGTERM the app's; SIGHUP (default) ours


def test_a_handler_built_off_the_main_thread_leaves_the_signals_alone(tmp_path: Path) -> None:
    done = run_python(textwrap.dedent(
        f"""
        import signal, threading
        import rerun_logging
        worker = threading.Thread(
            target=lambda: rerun_logging.RerunHandler("save:{tmp_path / 'off.rrd'}"))
        worker.start()
        worker.join()
        print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        """
    ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]


def test_a_billiard_child_ends_its_stream_before_os_exit(tmp_path: Path) -> None:
    """Celery's prefork children leave through os._exit after billiard's exit function."""
    pytest.importorskip("billiard")
    path = tmp_path / "pool.rrd"
    process, lines = start(
        """
        import billiard, os

        def work(n):
            for i in range(n):
                log.info("task line %d", i)

        children = [billiard.Process(target=work, args=(50,)) for _ in range(3)]
        for child in children:
            child.start()
        for child in children:
            child.join()
        print("children", *[child.pid for child in children], flush=True)
        print("codes", *[child.exitcode for child in children], flush=True)
        """,
        f"save:{path}",
    )
    assert finish(process) == 0, lines.lines
    pids = [int(p) for p in lines.first("children").split()[1:]]
    assert lines.first("codes").split()[1:] == ["0", "0", "0"]
    for pid in pids:
        records, ended = messages_of(tmp_path / f"pool.{pid}.rrd")
        assert records == [f"task line {i}" for i in range(50)], pid
        assert ended, f"child {pid} left no clean end"


def wait_until_waiting(pid: int) -> None:
    """Until the main thread of ``pid`` sleeps on a lock (the handler's wait at exit)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while "futex" not in Path(f"/proc/{pid}/wchan").read_text():
        assert time.monotonic() < deadline, "the process never waited"
        time.sleep(0.005)


def test_ctrl_c_while_close_waits_at_exit_is_one_line(tmp_path: Path) -> None:
    """A viewer that greets and never acknowledges: the exit waits up to flush_timeout;
    Ctrl-C ends the wait with one line, no traceback."""
    import socket

    from rerun_logging import format

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(
                f"""
                import atexit, logging, rerun_logging
                handler = rerun_logging.RerunHandler("connect:127.0.0.1:{port}",
                                                     flush_timeout={TIMEOUT})
                logging.basicConfig(level=logging.INFO, handlers=[handler])
                for i in range(100):
                    logging.info("waiting %d", i)
                atexit.register(lambda: print("exiting", flush=True))
                """
            )],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        server.settimeout(TIMEOUT)
        connection, _ = server.accept()
        accepted.append(connection)
        connection.sendall(format.VIEWER_HELLO)  # and never an ACK
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().strip() == "exiting"
        wait_until_waiting(process.pid)
        process.send_signal(signal.SIGINT)
        process.wait(TIMEOUT)
        stderr = process.stderr.read()
    finally:
        for connection in accepted:
            connection.close()
        server.close()
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.count("interrupted while waiting") == 1, stderr
    assert "100 records not delivered" in stderr, stderr


def test_the_give_up_line_counts_every_wait(tmp_path: Path) -> None:
    """logging.shutdown flushes (and waits), then closes (and waits): the line says how long
    the app was held up in all, not only the close's share."""
    import socket

    from rerun_logging import format

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(
                f"""
                import logging, rerun_logging
                handler = rerun_logging.RerunHandler("connect:127.0.0.1:{port}", flush_timeout=1.0)
                logging.basicConfig(level=logging.INFO, handlers=[handler])
                logging.info("never acknowledged")
                """
            )],
            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        server.settimeout(TIMEOUT)
        connection, _ = server.accept()
        connection.sendall(format.VIEWER_HELLO)
        _, stderr = process.communicate(timeout=TIMEOUT)
        connection.close()
    finally:
        server.close()
        if process.poll() is None:
            process.kill()
    (line,) = [line for line in stderr.splitlines() if "gave up after" in line]
    waited = float(line.split("gave up after ")[1].split("s")[0])
    assert waited >= 1.0, line  # flush's full second is in it


def test_a_sigterm_during_a_close_waits_for_it_then_kills(tmp_path: Path) -> None:
    """``Pool.terminate()`` sends SIGTERM while a worker already closes its handlers at
    exit: the close ends (bounded by ``flush_timeout``), then the process dies of it."""
    import socket

    silent = socket.socket()  # accepts (backlog) and never answers: the close waits
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    path = tmp_path / "term.rrd"
    try:
        process, lines = start(
            """
            import os, threading
            handler2 = rerun_logging.RerunHandler(sys.argv[2], application_id="exits", flush_timeout=1.5)
            log.addHandler(handler2)
            for i in range(5):
                log.info("record %d", i)
            def terminate():
                while not handler2._closed:
                    time.sleep(0.01)
                time.sleep(0.2)  # inside handler2's close, which waits for its silent peer
                os.kill(os.getpid(), signal.SIGTERM)
            threading.Thread(target=terminate).start()
            handler.close()
            print("closing", flush=True)
            handler2.close()
            print("closed", flush=True)
            time.sleep(30)
            """,
            f"save:{path}", f"connect:127.0.0.1:{silent.getsockname()[1]}",
        )
        lines.wait_for("closing", timeout=TIMEOUT)
        status = finish(process)
        lines.wait_for("gave up after", timeout=TIMEOUT)  # handler2's close ended
    finally:
        silent.close()
    assert status == -signal.SIGTERM  # then the signal killed it, before "closed"
    assert not lines.matching("closed")
    assert messages_of(path) == ([f"record {i}" for i in range(5)], True)


STRAND = """
import multiprocessing, threading
main = threading.get_native_id()
def strand(target):
    wchan, asleep = f"/proc/self/task/{main}/wchan", 0
    while asleep < 20:  # the main thread sleeps in sem_wait, not on the GIL
        asleep = asleep + 1 if "futex" in open(wchan).read() else 0
        time.sleep(0.005)
    print("blocked", flush=True)
    signal.pthread_kill((target or threading.current_thread()).ident, signal.SIGTERM)
def block_with_sigterm_on(target):
    threading.Thread(target=strand, args=(target,), daemon=True).start()
    multiprocessing.Semaphore(0).acquire()
"""


@pytest.mark.skipif(SPEEDUPS is None, reason="the C half notes the signals")
def test_a_sigterm_that_lands_on_another_thread_still_reaches_the_blocked_main_thread(
    tmp_path: Path,
) -> None:
    """Python runs a signal's handler on the main thread, at its next bytecode. A signal
    taken by another thread (here the flusher, on purpose), or one that lands just before
    the main thread blocks in C (a pool worker entering its wait for the next task as
    ``Pool.terminate()`` sends SIGTERM), leaves the main thread asleep with the handler
    never run, and the pool's join waits for ever. The flusher delivers it again."""
    path = tmp_path / "term.rrd"
    process, lines = start(
        STRAND + textwrap.dedent("""
        for i in range(300):
            log.info("before the signal %d", i)
        block_with_sigterm_on(handler._thread)
        log.info("never")
        """),
        f"save:{path}",
    )
    lines.wait_for("blocked", timeout=TIMEOUT)
    assert finish(process) == -signal.SIGTERM
    assert messages_of(path) == ([f"before the signal {i}" for i in range(300)], True)


@pytest.mark.skipif(SPEEDUPS is None, reason="the C half notes the signals")
def test_with_no_flusher_running_a_missed_sigterm_kills_at_once(tmp_path: Path) -> None:
    """A handler that has queued nothing has no flusher to deliver a missed signal again:
    the signal takes its default action, as without the package (nothing is lost)."""
    path = tmp_path / "term.rrd"
    process, lines = start(STRAND + "block_with_sigterm_on(None)\n", f"save:{path}")
    lines.wait_for("blocked", timeout=TIMEOUT)
    assert finish(process) == -signal.SIGTERM
    assert not path.exists()
