"""The admission queue on its own: order, bound, and giving a place up."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import requires

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _server_extra() -> None:
    requires("fastapi", "uvicorn", extra="server")


def test_requests_run_in_arrival_order() -> None:
    from slmkit.server.admission import Admission

    async def scenario() -> list[int]:
        admission = Admission(slots=1, max_waiting=8)
        order: list[int] = []

        async def request(number: int) -> None:
            ticket = admission.enter()
            await ticket.wait()
            order.append(number)
            await asyncio.sleep(0.01)
            ticket.release()

        await asyncio.gather(*(request(n) for n in range(5)))
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_full_line_is_refused_with_a_retry_hint() -> None:
    from slmkit.server.admission import Admission, QueueFull

    async def scenario() -> int:
        admission = Admission(slots=1, max_waiting=2)
        tickets = [admission.enter() for _ in range(3)]  # one runs, two wait
        assert (admission.running, admission.waiting) == (1, 2)
        with pytest.raises(QueueFull) as caught:
            admission.enter()
        for ticket in tickets:
            ticket.release()
        assert (admission.running, admission.waiting) == (0, 0)
        return caught.value.retry_after_s

    assert asyncio.run(scenario()) >= 1


def test_giving_up_a_place_in_line_lets_the_next_one_run() -> None:
    from slmkit.server.admission import Admission

    async def scenario() -> None:
        admission = Admission(slots=1, max_waiting=4)
        running = admission.enter()
        quitter, patient = admission.enter(), admission.enter()
        waiting = asyncio.ensure_future(quitter.wait())
        await asyncio.sleep(0)
        waiting.cancel()  # the client hung up while queued
        await asyncio.gather(waiting, return_exceptions=True)
        assert admission.waiting == 1
        running.release()
        await asyncio.wait_for(patient.wait(), timeout=1)
        assert patient.running and not quitter.running
        patient.release()
        assert (admission.running, admission.waiting) == (0, 0)

    asyncio.run(scenario())
