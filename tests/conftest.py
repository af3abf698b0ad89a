"""Shared fixtures: logging state restored after each test, the environment cleaned."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from rerun_logging import spec
from rerun_logging.format import Message, StreamDecoder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without RERUN_LOGGING_SINK and leaves the root logger as it was."""
    monkeypatch.delenv(spec.ENV_VAR, raising=False)
    spec._parse_env.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    spec._parse_env.cache_clear()


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A logger of the test's own, at DEBUG, not propagating; handlers closed after."""
    log = logging.getLogger(f"tests.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in log.handlers[:]:
        log.removeHandler(handler)
        handler.close()


def read_messages(path: str | os.PathLike[str], strict: bool = True) -> list[Message]:
    """Every message of a recording file, through the one decoder."""
    decoder = StreamDecoder(str(path))
    decoder.feed(Path(path).read_bytes())
    messages = list(decoder.messages())
    if strict:
        decoder.close()
    return messages


def run_python(
    code: str, *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
    timeout: float = 60, **kwargs: object,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with the package importable."""
    full_env = dict(os.environ)
    full_env.pop(spec.ENV_VAR, None)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True,
        text=True, timeout=timeout, **kwargs,  # type: ignore[arg-type]
    )
