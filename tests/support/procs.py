"""Stopping the processes the tests start, by their PID."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen[bytes], terminate: float = 10, kill: float = 5) -> None:
    """SIGTERM, then SIGKILL after ``terminate`` seconds; raises ``TimeoutExpired`` if
    the process outlives ``kill`` more seconds. A process already gone is left alone."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(terminate)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(kill)
