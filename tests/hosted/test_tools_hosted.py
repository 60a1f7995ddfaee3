"""Tools on hosted backends: sent in OpenAI's shape, the service's calls read back as the
same ToolCall / ToolCallDelta types as local models give, a malformed call a typed error.

The fault server streams the calls we choose (well-formed or not); llama-cpp-python's
server on 127.0.0.1 makes a real one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import slmkit
from slmkit import errors
from slmkit._toolcalls import assemble
from slmkit.types import ToolCall

from . import faults as f
from .conftest import HOSTED_BACKENDS, backend_options
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
