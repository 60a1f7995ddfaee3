"""Each hosted backend against a real OpenAI-compatible server: llama-cpp-python's own,
running the default GGUF on 127.0.0.1 (github through its base_url override)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import slmkit
from slmkit import errors

from .conftest import HOSTED_BACKENDS, backend_options

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France? Answer in one word."


def _load(backend: str, url: str, server_options: dict[str, Any]) -> slmkit.LLM:
    return slmkit.load(
        "qwen-local", backend=backend, **backend_options(backend, url, **server_options)
    )


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_chat_completes(backend: str, llama_server: str, server_options: dict[str, Any]) -> None:
    with _load(backend, llama_server, server_options) as llm:
        result = llm.chat(QUESTION, max_tokens=16)
    assert "paris" in result.text.lower()
    assert result.finish_reason == "stop"
    assert result.backend == backend
    # llama-cpp-python's server sends no usage in a stream: unknown, never invented
    assert result.usage is None
    assert result.timings.total_s >= result.timings.ttft_s > 0


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_chat_streams_the_same_text(
    backend: str, llama_server: str, server_options: dict[str, Any]
) -> None:
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Name three primary colours."},
    ]
    with _load(backend, llama_server, server_options) as llm:
        whole = llm.chat(messages, max_tokens=24)
        chunks = list(llm.stream(messages, max_tokens=24))
    assert len(chunks) > 2  # really streamed, piece by piece
    assert "".join(c.text for c in chunks) == whole.text
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == whole.finish_reason
    assert chunks[-1].usage is None and chunks[-1].timings is not None


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_max_tokens_ends_with_length(
    backend: str, llama_server: str, server_options: dict[str, Any]
) -> None:
    with _load(backend, llama_server, server_options) as llm:
        result = llm.chat("Count from 1 to 100, separated by commas.", max_tokens=5)
    assert result.finish_reason == "length"
    assert result.usage is None  # the server reports none; the finish reason says it all


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_stop_sequences_are_applied(
    backend: str, llama_server: str, server_options: dict[str, Any]
) -> None:
    prompt = "Count from 1 to 6, separated by commas. Only the numbers."
    with _load(backend, llama_server, server_options) as llm:
        result = llm.chat(prompt, max_tokens=24, stop=["4"])
    assert "3" in result.text and "4" not in result.text, result.text
    assert result.finish_reason == "stop"


@pytest.mark.parametrize("backend", ["openai", "nim"])
def test_generate_uses_the_completions_endpoint(
    backend: str, llama_server: str, server_options: dict[str, Any]
) -> None:
    prompt = "Question: What is the capital of France?\nAnswer:"
    with _load(backend, llama_server, server_options) as llm:
        result = llm.generate(prompt, max_tokens=4)
        streamed = "".join(c.text for c in llm.stream_generate(prompt, max_tokens=4))
    # not compared with each other: llama.cpp's greedy text can change when a request
    # reuses the cached prompt prefix (RUNTIME-NOTES), and this server reuses it
    assert "paris" in result.text.lower()
    assert "paris" in streamed.lower()


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_async_chat_and_stream(
    backend: str, llama_server: str, server_options: dict[str, Any]
) -> None:
    async def run(llm: slmkit.LLM) -> tuple[str, str]:
        whole = await llm.achat(QUESTION, max_tokens=8)
        parts = [
            c.text async for c in llm.astream([{"role": "user", "content": QUESTION}], max_tokens=8)
        ]
        return whole.text, "".join(parts)

    with _load(backend, llama_server, server_options) as llm:
        whole, streamed = asyncio.run(run(llm))
    assert whole == streamed
    assert "paris" in whole.lower()


def test_closing_a_stream_early_leaves_the_llm_usable(
    llama_server: str, server_options: dict[str, Any]
) -> None:
    with _load("openai", llama_server, server_options) as llm:
        stream = llm.stream([{"role": "user", "content": "Tell me a long story."}], max_tokens=400)
        for _ in stream:
            break
        stream.close()  # type: ignore[attr-defined]
        assert "paris" in llm.chat(QUESTION, max_tokens=8).text.lower()


def test_a_wrong_path_is_a_404_service_error(llama_server: str) -> None:
    url = llama_server.removesuffix("/v1") + "/nowhere"
    llm = slmkit.load("qwen-local", backend="openai", base_url=url, max_retries=0)
    with pytest.raises(errors.ServiceError) as info:
        llm.chat(QUESTION, max_tokens=4)
    assert info.value.status == 404
