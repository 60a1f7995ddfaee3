"""Tool calling on every local backend, with the real default instruct model.

Greedy and short: "required" gives a call that validates on every prompt, "none" never
calls, a Python function runs end to end and its result reaches the answer, and streamed
deltas make the same call as chat().
"""

from __future__ import annotations

import pytest

from slmkit._llm import LLM
from slmkit._toolcalls import assemble
from slmkit.tools import parse_tools

for _package in ("llguidance", "jsonschema"):
    pytest.importorskip(
        _package, reason='structured extra not installed: pip install "slmkit[structured]"'
    )


def add(a: int, b: int) -> str:
    """Add two integers and say their sum."""
    return f"The sum is {a + b}."


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"It is sunny in {city}."


def find_book(title: str, year: int | None = None) -> str:
    """Look up a book by its title."""
    return f"{title}: found"


TOOLS = [add, get_weather, find_book]
PROMPTS = [
    "What is 17 plus 25? Use the add tool.",
    "What's the weather in Paris?",
    "Find the book Dune.",
    "Add 3 and 4.",
    "Is it raining in Tokyo?",
    "Look up 'War and Peace' from 1869.",
    "Hello!",
    "Write a haiku about rain.",
    "Weather in Oslo in fahrenheit, please.",
    "How much is 1000 plus 1?",
    "Tell me a joke.",
    "Ignore the tools and answer in prose.",
    'Reply with JSON: {"x": 1}',
    "Search for a book called Emma.",
    "What is the capital of France?",
    "Sum -5 and 12.",
]


def test_required_gives_a_call_that_validates_on_every_prompt(chat_llm: LLM) -> None:
    toolset = parse_tools(TOOLS, None)
    assert toolset is not None
    for prompt in PROMPTS:
        result = chat_llm.chat(prompt, tools=TOOLS, tool_choice="required", max_tokens=48)
        assert result.finish_reason == "tool_calls", (prompt, result.text)
        assert len(result.tool_calls) == 1
        call = result.tool_calls[0]
        toolset.check(call.name, call.arguments, prompt)  # raises when it breaks the schema


def test_a_named_function_is_the_one_called(chat_llm: LLM) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    result = chat_llm.chat("Add 3 and 4.", tools=TOOLS, tool_choice=choice, max_tokens=48)
    assert [c.name for c in result.tool_calls] == ["get_weather"]


def test_auto_calls_add_with_the_numbers(chat_llm: LLM) -> None:
    result = chat_llm.chat(PROMPTS[0], tools=TOOLS, max_tokens=48)
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("add", {"a": 17, "b": 25})]


def test_none_never_calls(chat_llm: LLM) -> None:
    for prompt in PROMPTS[:4]:
        result = chat_llm.chat(prompt, tools=TOOLS, tool_choice="none", max_tokens=24)
        assert result.tool_calls == () and result.finish_reason != "tool_calls"


def test_run_tools_round_trip_answers_with_the_result(chat_llm: LLM) -> None:
    result = chat_llm.chat(PROMPTS[0], tools=TOOLS, run_tools=True, max_tokens=48)
    assert result.tool_calls == ()
    assert "42" in result.text


def test_streamed_deltas_make_the_non_streamed_call(chat_llm: LLM) -> None:
    whole = chat_llm.chat(PROMPTS[1], tools=TOOLS, max_tokens=48)
    chunks = list(chat_llm.stream(PROMPTS[1], tools=TOOLS, max_tokens=48))
    streamed = assemble(d for c in chunks for d in c.tool_calls)
    assert whole.tool_calls, whole.text
    assert [(c.name, c.arguments) for c in streamed] == [
        (c.name, c.arguments) for c in whole.tool_calls
    ]
    assert chunks[-1].finish_reason == whole.finish_reason == "tool_calls"
