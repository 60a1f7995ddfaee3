"""Tools on hosted backends: sent in OpenAI's shape, the service's calls read back as the
same ToolCall / ToolCallDelta types as local models give, a malformed call a typed error.

The fault server streams the calls we choose (well-formed or not); llama-cpp-python's
server on 127.0.0.1 makes real ones: through the model's own template, and through its
tool-calling chat format (chatml-function-calling).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import slmkit
from slmkit import errors
from slmkit._toolcalls import assemble
from slmkit.types import ToolCall

from . import faults as f
from .conftest import HOSTED_BACKENDS, backend_options, default_gguf, serve_gguf
from .faults import FaultServer


def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"The sum is {a + b}."


ROUND_TRIP = "What is 17 plus 25? Use the add tool."
ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


def _load(backend: str, server: FaultServer) -> slmkit.LLM:
    options = backend_options(backend, server.url, timeout=5.0, max_retries=0)
    return slmkit.load("fault-model", backend=backend, **options)


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_tools_are_sent_and_the_call_comes_back_checked(backend: str, faults: FaultServer) -> None:
    faults.queue(f.tool_calls(("add", '{"a": 17, "b": 25}')))
    with _load(backend, faults) as llm:
        result = llm.chat(ROUND_TRIP, tools=[add], tool_choice="required")
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (ToolCall("call_fault_0", "add", {"a": 17, "b": 25}),)
    assert result.text == ""
    body = faults.seen[-1].body
    assert body["tool_choice"] == "required"
    [tool] = body["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "add"
    assert tool["function"]["parameters"]["properties"] == ADD_SCHEMA["properties"]


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
@pytest.mark.parametrize(
    "call",
    [("add", '{"a": 17, "b"'), ("add", '{"a": "x", "b": 1}'), ("sub", '{"a": 1, "b": 2}')],
    ids=["not-json", "breaks-schema", "unknown-tool"],
)
def test_a_malformed_call_is_a_typed_error(
    backend: str, faults: FaultServer, call: tuple[str, str]
) -> None:
    faults.queue(f.tool_calls(call))
    with _load(backend, faults) as llm, pytest.raises(errors.ToolCallInvalid):
        llm.chat(ROUND_TRIP, tools=[add])


def test_a_round_trip_sends_openai_tool_messages(faults: FaultServer) -> None:
    """The assistant's call goes back with arguments as JSON text, the result as a tool
    message, and run_tools answers with the service's final text."""
    faults.queue(f.tool_calls(("add", '{"a": 17, "b": 25}')), f.answer("It is 42."))
    with _load("openai", faults) as llm:
        result = llm.chat(ROUND_TRIP, tools=[add], run_tools=True)
    assert result.text == "It is 42." and result.tool_calls == ()
    sent = faults.seen[-1].body["messages"]
    assert sent[1]["role"] == "assistant"
    [call] = sent[1]["tool_calls"]
    assert call["id"] == "call_fault_0" and call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 17, "b": 25}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_fault_0", "content": "The sum is 42."}


def test_streamed_deltas_make_the_call_async(faults: FaultServer) -> None:
    faults.queue(f.tool_calls(("add", '{"a": 1, "b": 2}'), ("add", '{"a": 3, "b": 4}')))

    async def chunks() -> list[slmkit.Chunk]:
        with _load("openai", faults) as llm:
            return [c async for c in llm.astream("Two sums?", tools=[add])]

    parts = asyncio.run(chunks())
    deltas = [d for c in parts for d in c.tool_calls]
    assert len(deltas) > 2  # pieces as they came, not one call at the end
    calls = [(c.id, c.name, c.arguments) for c in assemble(deltas)]
    assert calls == [
        ("call_fault_0", "add", {"a": 1, "b": 2}),
        ("call_fault_1", "add", {"a": 3, "b": 4}),
    ]
    assert parts[-1].finish_reason == "tool_calls"


@pytest.mark.slow
def test_llama_server_makes_a_named_call(llama_server: str, server_options: dict[str, Any]) -> None:
    """llama-cpp-python's server forces a named function through a grammar of its
    parameters and streams it as tool_calls (repeating id and name in every piece)."""
    options = backend_options("openai", llama_server, **server_options)
    choice = {"type": "function", "function": {"name": "add"}}
    with slmkit.load("qwen-local", backend="openai", **options) as llm:
        result = llm.chat(ROUND_TRIP, tools=[add], tool_choice=choice, max_tokens=32)
    assert result.finish_reason == "tool_calls", result.text
    [call] = result.tool_calls
    assert (call.name, call.arguments) == ("add", {"a": 17, "b": 25})


@pytest.fixture(scope="module")
def function_calling_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server with its own tool-calling chat format, which answers
    "functions.<name>:" plus arguments under a grammar and returns OpenAI tool_calls."""
    folder = tmp_path_factory.mktemp("function-calling-server")
    chat_format = ("--chat_format", "chatml-function-calling")
    yield from serve_gguf(default_gguf(), folder, "--n_ctx", "4096", *chat_format)


@pytest.mark.slow
def test_the_servers_tool_calling_format_gives_checked_calls(
    function_calling_server: str, server_options: dict[str, Any]
) -> None:
    """A named function: the format writes "functions.add:" and the arguments under a
    grammar of its parameters. (Under "auto" this 0.5B model picks "message:" and answers
    "17 plus 25 equals 42." in words, which is no call.)"""
    options = backend_options("openai", function_calling_server, **server_options)
    choice = {"type": "function", "function": {"name": "add"}}
    asked = {"tools": [add], "tool_choice": choice, "max_tokens": 32, "temperature": 0.0}
    with slmkit.load("qwen-local", backend="openai", **options) as llm:
        result = llm.chat(ROUND_TRIP, **asked)
        streamed = list(llm.stream(ROUND_TRIP, **asked))
    assert result.finish_reason == "tool_calls", result.text
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("add", {"a": 17, "b": 25})]
    calls = assemble(d for chunk in streamed for d in chunk.tool_calls)
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 17, "b": 25})]


@pytest.mark.slow
def test_required_where_the_server_cannot_force_a_call_is_a_typed_error(
    function_calling_server: str, server_options: dict[str, Any]
) -> None:
    """That chat format knows "auto", "none" and a named function; "required" fails inside
    the server (an assertion, and the stream closes), which reaches the caller as slmkit's
    typed error naming the backend, not as the client library's exception."""
    options = backend_options("openai", function_calling_server, **server_options)
    llm = slmkit.load("qwen-local", backend="openai", **options)
    with llm, pytest.raises(errors.SlmkitError, match="backend 'openai'"):
        llm.chat(ROUND_TRIP, tools=[add], tool_choice="required", max_tokens=32)
