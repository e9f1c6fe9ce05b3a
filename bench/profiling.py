"""py-spy flame graphs of the gateway while a scenario loads it (``python -m bench --profile``)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PROFILES = Path(__file__).resolve().parent / "profiles"
RATE = 250  # samples per second: enough for a 10 s window, light on the profiled process


def py_spy() -> str:
    """py-spy beside this Python (a venv's bin/), else on PATH; exits with a hint if missing."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    return found


@contextlib.contextmanager
def flame_graph(pid: int, svg: Path) -> Iterator[int]:
    """Sample ``pid`` (and its children) until the block ends, then write ``svg``;
    yields py-spy's own PID so its CPU is not counted as foreign."""
    command = [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--rate", str(RATE),
               "--format", "flamegraph", "--output", str(svg), "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield spy.pid
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if not svg.exists():
            print(f"py-spy wrote no profile for pid {pid}: {err.decode(errors='replace')[-300:]}")
