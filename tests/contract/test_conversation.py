"""Conversations on every local backend with the real default model: a turn answers what
stateless chat() answers on the same history; where the engine reuses its prefix, usage
says how much, and the cache is bounded."""

from __future__ import annotations

import pytest

from slmkit._llm import LLM

from .conftest import CHAT_MODEL, FRESH_OPTIONS, REUSING, _load, mlx_cpu_shortened

SYSTEM = "You are a terse assistant. Answer in at most five words."
TURNS = ["What is the capital of France?", "And of Italy?", "And of Spain?"]


def test_conversation_turns_equal_stateless_chat(chat_llm: LLM, backend: str) -> None:
    turns, tokens = (TURNS[:2], 6) if mlx_cpu_shortened(chat_llm, backend) else (TURNS, 12)
    conv = chat_llm.conversation(system=SYSTEM)
    for turn in turns:
        history = [*conv.messages, {"role": "user", "content": turn}]
        answer = conv.chat(turn, max_tokens=tokens)
        assert answer.text == chat_llm.chat(history, max_tokens=tokens).text
    assert len(conv.messages) == 1 + 2 * len(turns)
    assert "paris" in conv.messages[2]["content"].lower()


def _reusing(backend: str, entries: int = 4) -> LLM:
    if backend not in REUSING:
        pytest.skip(f"backend {backend!r} does not declare prefix reuse")
    return _load(CHAT_MODEL, backend, prefix_reuse=True, prefix_cache_entries=entries)


@pytest.fixture(scope="module")
def reuse_llm(backend: str):
    llm = _reusing(backend)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def fresh_llm(backend: str, chat_llm: LLM):
    """The default model evaluating every prompt in full, with the model reuse runs on."""
    if backend not in FRESH_OPTIONS:
        yield chat_llm
        return
    llm = _load(CHAT_MODEL, backend, **FRESH_OPTIONS[backend])
    assert not llm._engine.capabilities.prefix_reuse
    yield llm
    llm.close()


def test_prefix_reuse_answers_like_a_fresh_evaluation_at_temperature_0(
    reuse_llm: LLM, fresh_llm: LLM, backend: str
) -> None:
    """The documented check behind prefix_reuse being opt-in: here it must agree. Reuse is
    declared, and counted in usage from the second turn on."""
    assert reuse_llm._engine.capabilities.prefix_reuse
    turns, tokens = (TURNS[:2], 4) if mlx_cpu_shortened(reuse_llm, backend) else (TURNS, 12)
    # OpenVINO keeps whole KV blocks; slmkit counts those (docs/conversations.md)
    block = getattr(reuse_llm._engine._prefix, "block", 1)
    conv = reuse_llm.conversation(system=SYSTEM)
    before = None
    for turn in turns:
        history = [*conv.messages, {"role": "user", "content": turn}]
        reused = conv.chat(turn, max_tokens=tokens)
        assert reused.text == fresh_llm.chat(history, max_tokens=tokens).text
        if before is not None:
            assert reused.usage.cached_tokens >= (before.prompt_tokens - 1) // block * block
            assert 0 < reused.usage.cached_tokens < reused.usage.prompt_tokens
        before = reused.usage


def test_structured_output_on_a_reused_prefix_answers_like_a_fresh_one(
    reuse_llm: LLM, fresh_llm: LLM, backend: str
) -> None:
    """The mask applies to the first answer token whether or not the prompt was reused."""
    pytest.importorskip("llguidance", reason="structured extra not installed")
    if mlx_cpu_shortened(reuse_llm, backend):
        pytest.skip(
            "MLX's Linux CPU build: minutes (SLMKIT_MLX_CPU_FULL=1 runs it); the mask path runs "
            "in test_structured"
        )
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "schema": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    conv = reuse_llm.conversation(system=SYSTEM)
    conv.chat(TURNS[0], max_tokens=12)
    history = [*conv.messages, {"role": "user", "content": TURNS[1]}]
    reused = reuse_llm.chat(history, max_tokens=24, response_format=schema)
    assert reused.usage.cached_tokens > 0
    assert reused.parsed is not None
    assert reused.text == fresh_llm.chat(history, max_tokens=24, response_format=schema).text


def test_the_prefix_cache_is_bounded_and_evicts_the_oldest(reuse_llm: LLM, backend: str) -> None:
    if mlx_cpu_shortened(reuse_llm, backend):
        pytest.skip(
            "MLX's Linux CPU build: minutes (SLMKIT_MLX_CPU_FULL=1 runs it); the pool's cap "
            "runs on transformers"
        )
    with _reusing(backend, entries=1) as llm:
        a = llm.conversation(system=SYSTEM + " You like maps.")
        b = llm.conversation(system=SYSTEM + " You like trains.")
        a.chat(TURNS[0], max_tokens=4)
        b.chat(TURNS[0], max_tokens=4)  # one entry: this evicts a's saved state
        again = a.chat(TURNS[1], max_tokens=4)
        assert len(llm._engine._prefix) == 1
        # only the shared part of the system prompt is left to reuse, not a's history
        assert again.usage.cached_tokens < again.usage.prompt_tokens // 2
    with _reusing(backend, entries=2) as llm:
        a = llm.conversation(system=SYSTEM + " You like maps.")
        b = llm.conversation(system=SYSTEM + " You like trains.")
        a.chat(TURNS[0], max_tokens=4)
        b.chat(TURNS[0], max_tokens=4)
        again = a.chat(TURNS[1], max_tokens=4)
        assert again.usage.cached_tokens > again.usage.prompt_tokens // 2
