"""How much of the CPU other work took while slmkit measured something (calibration).

A thread count measured while another process holds a core favours fewer threads, and the
load average misses it: on a 2-core machine one busy neighbour keeps it near 1, below the
core count. So on Linux a :class:`Window` compares the CPU time every process used
(``/proc/stat``, steal included: a VM's vCPU lent to someone else is contention too) with
this process's own; elsewhere the load average stands in.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

__all__ = ["BUSY_CORES", "Window", "busy_now"]

#: Other work using at least this many cores' worth of CPU makes a measurement "busy".
BUSY_CORES = 0.5
_STAT = "/proc/stat"


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes (and steal) have used since boot; None off Linux."""
    try:
        with open(_STAT, encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class Window:
    """A stretch of time to judge: started with :meth:`start`, judged by :meth:`busy`."""

    wall: float
    machine: float | None
    own: float

    @classmethod
    def start(cls) -> Window:
        return cls(time.perf_counter(), _machine_busy_seconds(), _own_seconds())

    def other_cores(self) -> float | None:
        """Cores' worth of CPU other work used since the start; None where unknown."""
        machine = _machine_busy_seconds()
        wall = time.perf_counter() - self.wall
        if machine is None or self.machine is None or wall <= 0:
            return None
        return max(0.0, (machine - self.machine) - (_own_seconds() - self.own)) / wall

    def busy(self) -> bool:
        others = self.other_cores()
        if others is not None:
            return others >= BUSY_CORES
        try:
            return os.getloadavg()[0] > (os.cpu_count() or 1)
        except (AttributeError, OSError):  # Windows: no load average either
            return False


def busy_now(seconds: float = 0.25) -> bool:
    """Is other work using the CPU right now? (Sampled over ``seconds``.)"""
    window = Window.start()
    time.sleep(seconds)
    return window.busy()
