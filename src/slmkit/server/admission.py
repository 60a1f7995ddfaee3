"""The admission queue in front of each served model: bounded, first come first served.

A request takes a :class:`Ticket` before any work. With a free slot the ticket runs at once;
otherwise it waits in line, and a full line is refused (503 with Retry-After) instead of
growing without bound. Releasing a ticket, at the end or when the client hangs up while it
still waits, hands the slot to the next in line.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

__all__ = ["Admission", "QueueFull", "Ticket"]


class QueueFull(Exception):
    """No free slot and the waiting line is at its limit."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"queue full; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Ticket:
    """One request's place: waiting, then running, then released (exactly once)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self._granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._released = False

    @property
    def running(self) -> bool:
        return self._granted.done() and not self._released

    async def wait(self) -> None:
        """Until this ticket's turn; cancelling the wait gives the place up."""
        try:
            await asyncio.shield(self._granted)
        except asyncio.CancelledError:
            self.release()
            raise

    def grant(self) -> None:
        if not self._granted.done():
            self._granted.set_result(None)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.admission.leave(self, was_running=self._granted.done())


class Admission:
    """``slots`` requests run at once; at most ``max_waiting`` wait behind them."""

    def __init__(self, slots: int = 1, max_waiting: int = 32) -> None:
        if slots < 1 or max_waiting < 0:
            raise ValueError("slots must be >= 1 and max_waiting >= 0")
        self.slots = slots
        self.max_waiting = max_waiting
        self._running = 0
        self._waiting: deque[Ticket] = deque()
        self._recent_s = 1.0  # a moving average of how long a request runs

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    def enter(self) -> Ticket:
        """A ticket now, running or in line; :class:`QueueFull` when the line is full."""
        ticket = Ticket(self)
        if self._running < self.slots and not self._waiting:
            self._running += 1
            ticket.grant()
        elif len(self._waiting) >= self.max_waiting:
            raise QueueFull(self.retry_after_s())
        else:
            self._waiting.append(ticket)
        return ticket

    def leave(self, ticket: Ticket, was_running: bool) -> None:
        if not was_running:
            self._waiting.remove(ticket)
            return
        self._running -= 1
        while self._waiting and self._running < self.slots:
            self._running += 1
            self._waiting.popleft().grant()

    def record_duration(self, seconds: float) -> None:
        self._recent_s = 0.8 * self._recent_s + 0.2 * seconds

    def retry_after_s(self) -> int:
        """A guess at when a place frees up: the line ahead times a recent request's length."""
        ahead = (len(self._waiting) + self._running) / self.slots
        return max(1, min(60, math.ceil(ahead * self._recent_s)))
