"""The core's one policy, checked against the scripted in-process engine."""

from __future__ import annotations

import asyncio
import threading

import pytest

from slmkit import errors

from .conftest import make_llm
from .scripted_engine import BOS, ScriptedEngine


def test_generate_returns_the_reply_and_usage(llm, engine) -> None:
    result = llm.generate("Hi")
    assert result.text == "Hello, world!"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens == 3  # BOS + "Hi"
    assert result.usage.completion_tokens == len("Hello, world!")
    assert result.backend == "scripted" and result.model == "scripted-model"


def test_max_tokens_is_exact_and_finishes_with_length(llm) -> None:
    result = llm.generate("Hi", max_tokens=5)
    assert result.text == "Hello"
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 5


def test_stop_sequence_split_across_tokens_stops_and_is_not_emitted(llm) -> None:
    result = llm.generate("Hi", stop=", w")
    assert result.text == "Hello"
    assert result.finish_reason == "stop"


def test_stream_chunks_join_to_the_non_stream_text(llm) -> None:
    chunks = list(llm.stream("Hi", max_tokens=8))
    assert "".join(c.text for c in chunks) == llm.generate("Hi", max_tokens=8).text
    assert chunks[-1].finish_reason == "length"
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_multibyte_characters_split_across_tokens_never_come_out_broken() -> None:
    llm = make_llm(ScriptedEngine("Grüße 🙂!"))
    chunks = list(llm.stream("Hi"))
    assert all("\ufffd" not in c.text for c in chunks)
    assert "".join(c.text for c in chunks) == "Grüße 🙂!"


def test_breaking_out_of_a_stream_stops_generation() -> None:
    engine = ScriptedEngine("abc", endless=True)
    llm = make_llm(engine)
    for _ in llm.stream("Hi", max_tokens=10_000):
        break
    assert engine.produced <= 2
    assert not engine.active.is_set()
    assert llm.generate("Hi", max_tokens=3).text == "abc"  # lock released


def test_greedy_is_deterministic_and_seed_reproduces_sampling(llm) -> None:
    assert llm.generate("Hi").text == llm.generate("Hi").text
    one = llm.generate("Hi", temperature=1.0, seed=7, max_tokens=20).text
    two = llm.generate("Hi", temperature=1.0, seed=7, max_tokens=20).text
    other = llm.generate("Hi", temperature=1.0, seed=8, max_tokens=20).text
    assert one == two != other


def test_chat_renders_the_template_without_a_second_bos(llm, engine) -> None:
    llm.chat([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    prompt = engine.prompts[-1]
    assert prompt.count(BOS) == 1
    assert (
        bytes(t for t in prompt if t < 256).decode()
        == "<system>S</system><user>U</user><assistant>"
    )


def test_a_bare_string_is_one_user_message(llm, engine) -> None:
    llm.chat("hey")
    assert bytes(t for t in engine.prompts[-1] if t < 256).decode() == "<user>hey</user><assistant>"


def test_chat_on_a_base_model_points_to_generate() -> None:
    llm = make_llm(is_chat=False)
    with pytest.raises(errors.NotAChatModel, match=r"generate\(\)"):
        llm.chat("hi")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty list"),
        ([{"role": "wizard", "content": "x"}], "role"),
        ([{"role": "user", "content": 3}], "content must be a str"),
        ([{"role": "user", "content": "x", "tool_calls": []}], "unsupported key"),
        (["just a string in a list"], "must be a dict"),
        (42, "must be a str or a list"),
        ("", "empty"),
    ],
)
def test_bad_messages_are_rejected_before_any_work(llm, engine, messages, match) -> None:
    with pytest.raises(errors.InvalidRequest, match=match):
        llm.chat(messages)
    assert engine.prompts == []


@pytest.mark.parametrize("prompt", ["", None, ["list"]])
def test_bad_prompts_are_rejected(llm, prompt) -> None:
    with pytest.raises(errors.InvalidRequest, match="prompt"):
        llm.generate(prompt)


def test_errors_raise_at_call_time_not_on_first_iteration(llm) -> None:
    with pytest.raises(errors.InvalidRequest):
        llm.stream("Hi", max_tokens=0)


def test_prompt_plus_max_tokens_over_context_is_refused(engine) -> None:
    llm = make_llm(ScriptedEngine(context_length=32))
    with pytest.raises(errors.ContextLengthExceeded) as info:
        llm.generate("x" * 20, max_tokens=20)
    assert info.value.prompt_tokens == 21 and info.value.context_length == 32
    assert "lower max_tokens" in str(info.value)


def test_a_sampling_parameter_the_engine_did_not_declare_is_refused_before_any_work(
    llm, engine
) -> None:
    with pytest.raises(errors.UnsupportedFeature, match="'scripted' cannot set top_k"):
        llm.generate("Hi", top_k=5)
    assert engine.prompts == []


def test_load_time_defaults_apply_and_calls_override_them() -> None:
    llm = make_llm(max_tokens=4)
    assert llm.generate("Hi").usage.completion_tokens == 4
    assert llm.generate("Hi", max_tokens=2).usage.completion_tokens == 2


def test_second_open_stream_in_the_same_thread_is_refused_not_deadlocked(llm) -> None:
    first = llm.stream("Hi")
    next(first)
    second = llm.stream("Hi")
    with pytest.raises(errors.InvalidRequest, match="still open"):
        next(second)
    first.close()
    assert llm.generate("Hi", max_tokens=2).text == "He"


def test_threads_share_one_llm_and_each_gets_its_own_answer(llm) -> None:
    results: list[str] = []

    def work() -> None:
        results.append(llm.generate("Hi", max_tokens=5).text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == ["Hello"] * 4


def test_async_twins_match_sync(llm) -> None:
    async def run():
        return (
            await llm.agenerate("Hi", max_tokens=5),
            await llm.achat("Hi", max_tokens=5),
            [c.text async for c in llm.astream("Hi", max_tokens=5)],
        )

    gen, chat, parts = asyncio.run(run())
    assert gen.text == chat.text == "".join(parts) == "Hello"


def test_cancelling_an_async_stream_stops_the_engine() -> None:
    engine = ScriptedEngine("abc", endless=True)
    llm = make_llm(engine)

    async def run() -> None:
        async def consume() -> None:
            async for _ in llm.astream("Hi", max_tokens=1_000_000):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    for _ in range(100):
        if not engine.active.is_set():
            break
        threading.Event().wait(0.01)
    assert not engine.active.is_set()
    assert engine.produced < 1_000_000


def test_async_errors_raise_in_the_caller(llm) -> None:
    async def run() -> None:
        await llm.agenerate("Hi", temperature=-1)

    with pytest.raises(errors.InvalidRequest, match="temperature"):
        asyncio.run(run())


def test_close_is_idempotent_and_later_calls_fail_clearly(llm, engine) -> None:
    with llm:
        pass
    llm.close()
    assert engine.closed
    with pytest.raises(errors.InvalidRequest, match="closed"):
        llm.generate("Hi")
    assert "closed" in repr(llm)


def test_timings_are_consistent(llm) -> None:
    t = llm.generate("Hi").timings
    assert 0 <= t.ttft_s <= t.total_s
    assert t.decode_tokens_per_s > 0


def test_a_runtime_that_ends_by_itself_finishes_with_stop() -> None:
    llm = make_llm(ScriptedEngine("Hi!", yields_eos=False))
    result = llm.generate("x")
    assert (result.text, result.finish_reason, result.usage.completion_tokens) == ("Hi!", "stop", 3)
