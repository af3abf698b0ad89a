"""The public API is what ``__all__`` says, and importing it stays light."""

from __future__ import annotations

import re
import subprocess
import sys

import rerun_logging

from .conftest import ROOT


def test_all_is_the_public_api() -> None:
    assert sorted(rerun_logging.__all__) == sorted(
        [
            "ENV_VAR", "Dropped", "End", "ExceptionInfo", "HandlerStats", "Record",
            "RecordingError", "RecordingInfo", "RerunHandler", "SinkSpec", "SinkSpecError",
            "SinkStats", "StreamDecoder", "__version__", "parse_sinks",
            "script_add_args", "script_setup", "script_teardown",
        ]
    )
    for name in rerun_logging.__all__:
        assert hasattr(rerun_logging, name), name


def test_import_does_not_load_the_server_argparse_or_start_threads() -> None:
    code = (
        "import sys, threading, rerun_logging; "
        "print(any(m.startswith('websockets') for m in sys.modules), 'argparse' in sys.modules, "
        "threading.active_count()); "
        "from rerun_logging import script_setup; print('argparse' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT)},
    ).stdout.split()
    assert out == ["False", "False", "1", "True"]


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"<!-- test-command -->\s*```sh\n(.+?)\n```", readme, re.S)
    assert block is not None, "README has no test command block"
    assert block.group(1) in ci, block.group(1)
