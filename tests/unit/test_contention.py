"""Whether other work took the CPU while slmkit measured: the arithmetic, the fallback, and
a real neighbour spinning on a core."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from slmkit import contention
from slmkit.contention import Window


def _window_after(monkeypatch: pytest.MonkeyPatch, machine: float, own: float) -> Window:
    """A one-second window that began at 100 s of machine CPU and 10 s of our own."""
    monkeypatch.setattr(contention, "_machine_busy_seconds", lambda: machine)
    monkeypatch.setattr(contention, "_own_seconds", lambda: own)
    return Window(time.perf_counter() - 1.0, 100.0, 10.0)


def test_other_work_is_the_machines_cpu_less_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    ours_mostly = _window_after(monkeypatch, machine=101.3, own=10.9)
    assert ours_mostly.other_cores() == pytest.approx(0.4, abs=0.01)
    assert not ours_mostly.busy()
    a_neighbour = _window_after(monkeypatch, machine=102.0, own=10.9)
    assert a_neighbour.other_cores() == pytest.approx(1.1, abs=0.01)
    assert a_neighbour.busy()


def test_without_proc_stat_the_load_average_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contention, "_machine_busy_seconds", lambda: None)
    window = Window.start()
    monkeypatch.setattr(contention.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(contention.os, "getloadavg", lambda: (2.5, 1.0, 1.0), raising=False)
    assert window.other_cores() is None and window.busy()
    monkeypatch.setattr(contention.os, "getloadavg", lambda: (1.5, 1.0, 1.0), raising=False)
    assert not window.busy()


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/stat exists on Linux only")
def test_a_process_spinning_on_a_core_makes_the_machine_busy() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        assert contention.busy_now(0.6)
    finally:
        spinner.kill()
        spinner.wait()
