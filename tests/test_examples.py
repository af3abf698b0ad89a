"""The examples run as a user runs them, and write what they promise."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rerun_logging import End, Record

from .conftest import ROOT, child_env, read_messages

EXAMPLES = ROOT / "examples"


def run_example(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = child_env()
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_demo_writes_records_with_extras_and_an_exception(tmp_path: Path) -> None:
    result = run_example(EXAMPLES / "demo.py", tmp_path)
    assert result.returncode == 0, result.stderr
    messages = read_messages(tmp_path / "demo.rlg")
    records = [m for m in messages if isinstance(m, Record)]
    assert messages[0].application_id == "shop-demo"
    assert any("latency_ms" in r.extras and "queue_depth" in r.extras for r in records)
    failed = [r for r in records if r.exception is not None]
    assert len(failed) == 1 and failed[0].exception.type == "KeyError"
    assert "missing-sku" in failed[0].exception.traceback
    assert isinstance(messages[-1], End)


def test_dictconfig_example(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "dictconfig", tmp_path / "app")
    result = run_example(tmp_path / "app" / "app.py", tmp_path / "app")
    assert result.returncode == 0, result.stderr
    assert "synced batch 2" in result.stderr
    messages = read_messages(tmp_path / "app" / "dictconfig-demo.rlg")
    records = [m for m in messages if isinstance(m, Record)]
    assert [r.message for r in records][:2] == ["connecting", "synced batch 0"]
    assert records[0].extras == {"host": "db.local", "port": 5432}
    assert records[0].entity_path == "demo/inventory/sync"
    assert messages[0].application_id == "dictconfig-demo"


def test_fileconfig_example(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "fileconfig", tmp_path / "app")
    result = run_example(tmp_path / "app" / "app.py", tmp_path / "app")
    assert result.returncode == 0, result.stderr
    messages = read_messages(tmp_path / "app" / "fileconfig-demo.rlg")
    records = [m for m in messages if isinstance(m, Record)]
    assert [r.message for r in records] == ["invoice INV-1 sent", "payment failed"]
    assert records[1].exception.type == "ValueError"
    assert records[1].extras == {"invoice": "INV-2"}
    assert messages[0].application_id == "fileconfig-demo"
