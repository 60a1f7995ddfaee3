"""Behaviour every local backend must show, on the real offline models.

Backends agree on prompt tokens and behaviour; quantized runtimes may differ in the
generated text itself, so nothing here compares text across backends.
"""

from __future__ import annotations

import asyncio

import pytest

from slmkit import errors
from slmkit._llm import LLM

from .conftest import BASE_MODEL, _load

PROMPT = "Question: What is the capital of France?\nAnswer:"
OPEN_PROMPT = "Once upon a time, in a small village by the sea, there lived"


def test_info_describes_the_loaded_model(base_llm: LLM, backend: str) -> None:
    assert base_llm.info.backend == backend
    assert base_llm.info.context_length > 0
    assert base_llm.info.artifact
    assert base_llm.info.is_chat is False


def test_greedy_generation_is_deterministic(base_llm: LLM) -> None:
    first = base_llm.generate(OPEN_PROMPT, max_tokens=16, temperature=0)
    second = base_llm.generate(OPEN_PROMPT, max_tokens=16, temperature=0)
    assert first.text == second.text
    assert first.text.strip()


def test_base_model_answers_a_raw_prompt(base_llm: LLM) -> None:
    result = base_llm.generate(PROMPT, max_tokens=8)
    assert "paris" in result.text.lower()


def test_max_tokens_is_exact(base_llm: LLM) -> None:
    result = base_llm.generate(OPEN_PROMPT, max_tokens=7)
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 7


def test_stream_text_equals_non_stream_text(base_llm: LLM) -> None:
    whole = base_llm.generate(OPEN_PROMPT, max_tokens=12)
    chunks = list(base_llm.stream_generate(OPEN_PROMPT, max_tokens=12))
    assert "".join(c.text for c in chunks) == whole.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    last = chunks[-1]
    assert last.finish_reason == whole.finish_reason
    assert last.usage == whole.usage


def test_stop_sequence_ends_generation_and_is_not_emitted(base_llm: LLM) -> None:
    reference = base_llm.generate(OPEN_PROMPT, max_tokens=24).text
    words = reference.split()
    assert len(words) >= 4, reference
    stop = " " + words[2][:3]  # likely spans a token boundary
    cut = reference.index(stop)
    result = base_llm.generate(OPEN_PROMPT, max_tokens=24, stop=[stop, "\x01never"])
    assert result.text == reference[:cut]
    assert result.finish_reason == "stop"
    assert result.usage.completion_tokens < 24


def test_usage_counts_prompt_and_completion_tokens(base_llm: LLM) -> None:
    result = base_llm.generate(PROMPT, max_tokens=5)
    assert result.usage.prompt_tokens == base_llm.count_tokens(PROMPT) + _bos(base_llm)
    assert 1 <= result.usage.completion_tokens <= 5
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.timings.total_s >= result.timings.ttft_s > 0


def test_prompt_tokens_match_llama_cpp(base_llm: LLM, backend: str) -> None:
    """The same prompt costs the same tokens on every backend (llama.cpp is the reference)."""
    reference = pytest.importorskip(
        "llama_cpp", reason="llama.cpp extra not installed: no reference"
    )
    del reference
    import slmkit

    if backend == "llamacpp":
        pytest.skip("llama.cpp is the reference itself")
    with slmkit.load(base_llm.info.model, backend="llamacpp") as ref:
        expected = ref.generate(PROMPT, max_tokens=1).usage.prompt_tokens
    assert base_llm.generate(PROMPT, max_tokens=1).usage.prompt_tokens == expected


def test_seeded_sampling_is_reproducible(base_llm: LLM) -> None:
    one = base_llm.generate(OPEN_PROMPT, max_tokens=12, temperature=0.9, seed=1234)
    two = base_llm.generate(OPEN_PROMPT, max_tokens=12, temperature=0.9, seed=1234)
    assert one.text == two.text


def test_closing_a_stream_early_frees_the_model(base_llm: LLM) -> None:
    stream = base_llm.stream_generate(OPEN_PROMPT, max_tokens=200)
    received = ""
    for chunk in stream:
        received += chunk.text
        if len(received) > 3:
            break
    stream.close()  # type: ignore[attr-defined]
    after = base_llm.generate(PROMPT, max_tokens=3)
    assert after.usage.completion_tokens >= 1


def test_async_generate_matches_sync(base_llm: LLM) -> None:
    sync = base_llm.generate(OPEN_PROMPT, max_tokens=10)

    async def run() -> tuple[str, str]:
        whole = await base_llm.agenerate(OPEN_PROMPT, max_tokens=10)
        parts = [c.text async for c in base_llm.astream_generate(OPEN_PROMPT, max_tokens=10)]
        return whole.text, "".join(parts)

    whole, streamed = asyncio.run(run())
    assert whole == sync.text == streamed


def test_cancelling_an_async_stream_stops_generation(base_llm: LLM) -> None:
    async def run() -> int:
        async def consume() -> None:
            async for _ in base_llm.astream_generate(OPEN_PROMPT, max_tokens=500):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the model must be free again quickly, not still producing 500 tokens
        after = await asyncio.wait_for(base_llm.agenerate(PROMPT, max_tokens=2), timeout=120)
        return after.usage.completion_tokens

    assert asyncio.run(run()) >= 1


def test_prompt_longer_than_context_is_refused(base_llm: LLM) -> None:
    long_prompt = "word " * (base_llm.info.context_length + 10)
    with pytest.raises(errors.ContextLengthExceeded, match="context length"):
        base_llm.generate(long_prompt, max_tokens=4)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 5}, "max_new_tokens"),
    ],
)
def test_bad_params_raise_invalid_request(
    base_llm: LLM, params: dict[str, object], field: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        base_llm.generate(PROMPT, **params)
    assert info.value.field == field


def test_chat_on_a_base_model_is_refused(base_llm: LLM) -> None:
    with pytest.raises(errors.NotAChatModel, match="generate"):
        base_llm.chat("Hello")


def test_chat_model_answers_the_capital_question(chat_llm: LLM) -> None:
    result = chat_llm.chat("What is the capital of France? Answer in one word.", max_tokens=16)
    assert "paris" in result.text.lower()
    assert result.finish_reason == "stop"
    assert chat_llm.info.is_chat


def test_chat_stream_equals_chat(chat_llm: LLM) -> None:
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Name a primary colour."},
    ]
    whole = chat_llm.chat(messages, max_tokens=12)
    streamed = "".join(c.text for c in chat_llm.stream(messages, max_tokens=12))
    assert streamed == whole.text


def test_chat_prompt_tokens_match_llama_cpp(chat_llm: LLM, backend: str) -> None:
    """Template rendering and BOS handling agree across backends."""
    pytest.importorskip("llama_cpp", reason="llama.cpp extra not installed: no reference")
    import slmkit

    if backend == "llamacpp":
        pytest.skip("llama.cpp is the reference itself")
    question = "What is the capital of France? Answer in one word."
    with slmkit.load(chat_llm.info.model, backend="llamacpp") as ref:
        expected = ref.chat(question, max_tokens=1).usage.prompt_tokens
    assert chat_llm.chat(question, max_tokens=1).usage.prompt_tokens == expected


def test_stream_of_a_string_is_a_chat_turn(chat_llm: LLM) -> None:
    question = "What is the capital of France? Answer in one word."
    streamed = "".join(c.text for c in chat_llm.stream(question, max_tokens=8))
    assert streamed == chat_llm.chat(question, max_tokens=8).text
    assert "paris" in streamed.lower()


def test_close_with_a_stream_open_ends_it_and_every_later_call_is_typed(backend: str) -> None:
    llm = _load(BASE_MODEL, backend)
    stream = llm.stream_generate(OPEN_PROMPT, max_tokens=200)
    next(stream)
    llm.close()  # returns at once, with the stream still held
    with pytest.raises(errors.LLMClosed):
        next(stream)
    with pytest.raises(errors.LLMClosed):
        llm.count_tokens("a")  # used to crash the interpreter on llama.cpp (freed model)
    with pytest.raises(errors.LLMClosed):
        llm.generate(PROMPT, max_tokens=2)
    llm.close()


def test_async_chat(chat_llm: LLM) -> None:
    result = asyncio.run(chat_llm.achat("What is the capital of France? Answer in one word."))
    assert "paris" in result.text.lower()


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user", "content": 42}],
    ],
    ids=["empty", "unknown-role", "non-string-content"],
)
def test_bad_messages_raise_invalid_request(
    chat_llm: LLM, messages: list[dict[str, object]]
) -> None:
    with pytest.raises(errors.InvalidRequest, match="messages"):
        chat_llm.chat(messages)  # type: ignore[arg-type]


def test_non_ascii_output_is_valid_text(chat_llm: LLM) -> None:
    result = chat_llm.chat(
        "Write the Japanese word for 'cat' in hiragana, nothing else.", max_tokens=12
    )
    assert "\ufffd" not in result.text
    assert any(ord(ch) > 127 for ch in result.text), result.text


def _bos(llm: LLM) -> int:
    engine = llm._engine
    return 1 if getattr(engine, "adds_bos", False) else 0
