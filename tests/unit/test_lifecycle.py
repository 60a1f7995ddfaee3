"""The LLM's lifecycle and scheduling under engine contract v2: close() with streams open,
use after close, arrival order, the same-thread rule, and the bounded async hand-off.

Every test runs under a timeout: a deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import threading
import time
import warnings

import pytest

from slmkit import errors
from slmkit.types import ModelInfo

from .conftest import make_llm
from .scripted_engine import ScriptedEngine

pytestmark = pytest.mark.timeout(30)


def _endless() -> tuple[ScriptedEngine, object]:
    engine = ScriptedEngine("abc", endless=True)
    return engine, make_llm(engine)


def test_every_call_on_a_closed_llm_raises_one_typed_error(llm, engine) -> None:
    llm.close()
    calls = [
        lambda: llm.generate("Hi"),
        lambda: llm.chat("Hi"),
        lambda: llm.stream("Hi"),
        lambda: llm.stream_generate("Hi"),
        lambda: llm.count_tokens("a"),
        lambda: asyncio.run(llm.achat("Hi")),
        lambda: asyncio.run(llm.agenerate("Hi")),
    ]
    for call in calls:
        with pytest.raises(errors.LLMClosed, match="load\\(\\) the model again"):
            call()
    assert engine.closed and engine.prompts == []


def test_close_with_a_stream_held_in_the_same_thread_returns_and_ends_the_stream() -> None:
    engine, llm = _endless()
    stream = llm.stream("Hi", max_tokens=10_000)
    next(stream)
    llm.close()  # used to deadlock forever on the stream's lock
    assert engine.closed
    assert not engine.active.is_set()
    with pytest.raises(errors.LLMClosed, match="closed while this stream was open"):
        next(stream)


def test_close_from_another_thread_ends_a_running_stream() -> None:
    engine, llm = _endless()
    seen: list[BaseException] = []

    def read() -> None:
        try:
            for _ in llm.stream("Hi", max_tokens=1_000_000):
                time.sleep(0.001)
        except BaseException as exc:
            seen.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    while engine.produced < 5 and reader.is_alive():
        time.sleep(0.005)
    assert seen == []
    llm.close()
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert len(seen) == 1 and isinstance(seen[0], errors.LLMClosed)
    assert engine.closed  # freed once the stream ended, never while it ran


def test_close_wakes_a_thread_waiting_for_its_turn() -> None:
    _engine, llm = _endless()
    holder = llm.stream("Hi", max_tokens=10_000)
    next(holder)
    outcome: list[BaseException | str] = []

    def wait_for_turn() -> None:
        try:
            outcome.append(llm.generate("Hi", max_tokens=3).text)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_turn)
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()  # queued behind the open stream
    llm.close()
    waiter.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], errors.LLMClosed)


def test_an_async_call_in_a_thread_holding_a_stream_is_refused_not_deadlocked() -> None:
    _, llm = _endless()
    stream = llm.stream("Hi", max_tokens=100)
    next(stream)
    with pytest.raises(errors.InvalidRequest, match="still open in this thread"):
        asyncio.run(llm.agenerate("Hi"))
    stream.close()
    assert asyncio.run(llm.agenerate("Hi", max_tokens=3)).text == "abc"


def test_close_racing_generate_from_other_threads_never_crashes_or_hangs() -> None:
    engine, llm = _endless()
    errors_seen: list[BaseException] = []

    def work() -> None:
        for _ in range(20):
            try:
                llm.generate("Hi", max_tokens=50)
            except errors.LLMClosed:
                return
            except BaseException as exc:  # anything else is a bug
                errors_seen.append(exc)
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.02)
    llm.close()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert errors_seen == []
    assert engine.closed


def test_requests_run_in_arrival_order() -> None:
    engine = ScriptedEngine("x")
    llm = make_llm(engine)
    holder = llm.stream("first", max_tokens=1)
    next(holder)  # holds the engine: the others queue up in the order they ask
    order: list[str] = []

    def ask(name: str) -> None:
        llm.generate(name, max_tokens=1)
        order.append(name)

    threads = []
    for name in ("a", "b", "c", "d"):
        thread = threading.Thread(target=ask, args=(name,))
        thread.start()
        threads.append(thread)
        while llm.scheduler.stats().waiting < len(threads):
            time.sleep(0.002)
    holder.close()
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["a", "b", "c", "d"]


def test_a_slow_async_consumer_holds_generation_back() -> None:
    engine, llm = _endless()

    async def run() -> int:
        stream = llm.astream_generate("Hi", max_tokens=100_000)
        await stream.__anext__()
        await asyncio.sleep(0.3)  # the consumer dawdles: the worker must wait for it
        ahead = engine.produced
        await stream.aclose()
        return ahead

    ahead = asyncio.run(run())
    assert ahead <= 16, f"generation ran {ahead} tokens ahead of the consumer"


def test_stream_of_a_string_on_a_chat_model_is_a_chat_turn(llm, engine) -> None:
    streamed = "".join(chunk.text for chunk in llm.stream("Hi", max_tokens=5))
    assert streamed == llm.chat("Hi", max_tokens=5).text
    assert engine.prompts[0] == engine.prompts[1]
    assert bytes(t for t in engine.prompts[0] if t < 256).decode().endswith("<assistant>")


def test_stream_generate_streams_a_raw_prompt(llm, engine) -> None:
    text = "".join(chunk.text for chunk in llm.stream_generate("Hi", max_tokens=5))
    assert text == llm.generate("Hi", max_tokens=5).text
    assert bytes(t for t in engine.prompts[0] if t < 256) == b"Hi"


def test_stream_of_a_string_on_a_base_model_still_works_with_a_deprecation_warning() -> None:
    engine = ScriptedEngine()
    llm = make_llm(engine, is_chat=False)
    with pytest.warns(DeprecationWarning, match="stream_generate"):
        text = "".join(chunk.text for chunk in llm.stream("Hi", max_tokens=5))
    assert text == "Hello"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "".join(c.text for c in llm.stream_generate("Hi", max_tokens=5)) == "Hello"


def test_model_info_is_immutable_all_the_way_down() -> None:
    facts = {"openvino": {"device": "CPU", "sizes": [1, 2]}}
    info = ModelInfo("b", "m", "a", "cpu", 8, True, extra=facts)
    facts["openvino"]["device"] = "GPU"  # the engine's own dict changing later...
    assert info.extra["openvino"]["device"] == "CPU"  # ...does not reach the info
    assert json.loads(json.dumps(info.extra)) == {"openvino": {"device": "CPU", "sizes": [1, 2]}}
    assert pickle.loads(pickle.dumps(info)) == info and copy.deepcopy(info) == info
    with pytest.raises(TypeError):
        info.extra["openvino"]["device"] = "NPU"  # type: ignore[index]
    assert info.extra["openvino"]["sizes"] == (1, 2)
