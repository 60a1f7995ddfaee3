"""Check functions that tests/unit/test_trial.py runs in child processes.

Each appends a line to ``marker`` first, so a test counts how many children ran.
"""

from __future__ import annotations

import os
import signal
import time


def _mark(marker: str, mode: str) -> None:
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(mode + "\n")


def faults_unless_safe(marker: str, mode: str) -> None:
    """Dies of SIGSEGV in mode "fast", as llama.cpp's AMX repack does on some CPUs."""
    _mark(marker, mode)
    if mode == "fast":
        os.kill(os.getpid(), signal.SIGSEGV)


def always_faults(marker: str, mode: str) -> None:
    _mark(marker, mode)
    os.kill(os.getpid(), signal.SIGILL if mode == "fast" else signal.SIGBUS)


def raises(marker: str, mode: str) -> None:
    _mark(marker, mode)
    raise ValueError(f"model file not understood in mode {mode}")


def hangs(marker: str, mode: str) -> None:
    _mark(marker, mode)
    if mode == "fast":
        time.sleep(60)


def exits_before_the_check(marker: str, mode: str) -> None:
    _mark(marker, mode)
    os._exit(3)


def killed_from_outside(marker: str, mode: str) -> None:
    """Dies of SIGKILL in mode "fast", as under the OOM killer."""
    _mark(marker, mode)
    if mode == "fast":
        os.kill(os.getpid(), signal.SIGKILL)
