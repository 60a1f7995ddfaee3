"""Tool calling in the core: tools parsed, rendered through the template, calls found per
family, checked, streamed as deltas, and run by run_tools=True.

The scripted engine replays fixed replies with Qwen2.5's real chat template, so these
tests prove what the core does on its own (real models: tests/contract/test_tools.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmkit import errors
from slmkit._toolcalls import assemble, template_family
from slmkit.backends.base import Request, Token
from slmkit.tools import Tool, parse_tools
from slmkit.types import ToolCallDelta

from .conftest import make_llm
from .scripted_engine import TEMPLATE, ScriptedEngine

QWEN = (Path(__file__).parent / "qwen25_chat_template.jinja").read_text(encoding="utf-8")
QUESTION = "What is 17 plus 25? Use the add tool."


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


def weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city.

    :param city: the city's name
    """
    return f"sunny in {city}"


class Replies(ScriptedEngine):
    """Replays one reply per request, in order; remembers each prompt as text."""

    def __init__(self, *replies: str, template: str = QWEN) -> None:
        super().__init__(replies[0], chat_template=template)
        self.replies = [r.encode("utf-8") for r in replies]
        self.rendered: list[str] = []

    def run(self, request: Request) -> Iterator[Token]:
        self.reply = self.replies[min(len(self.prompts), len(self.replies) - 1)]
        self.rendered.append(self.decode(request.prompt_ids or ()))
        return super().run(request)


def call_text(name: str, arguments: dict[str, object]) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(arguments)}}}\n</tool_call>'


# -- tools= and tool_choice= -----------------------------------------------------------


def test_a_function_becomes_a_schema_from_its_hints_and_docstring() -> None:
    tool = Tool.from_function(weather)
    assert tool.name == "weather" and tool.description == "Current weather in a city."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "the city's name"},
            "unit": {"type": "string", "default": "celsius"},
        },
        "required": ["city"],
    }
    assert (
        Tool.from_function(add).parameters["properties"]["a"]["description"] == "the first number"
    )


def test_openai_dicts_and_functions_mix() -> None:
    spec = {"type": "function", "function": {"name": "mul", "parameters": {"type": "object"}}}
    toolset = parse_tools([add, spec], None)
    assert toolset is not None and [t.name for t in toolset.tools] == ["add", "mul"]
    assert toolset.choice == "auto" and toolset.openai_tools()[1] == spec


@pytest.mark.parametrize(
    ("tools", "choice", "field"),
    [
        ([], None, "tools"),
        ("add", None, "tools"),
        ([{"type": "function", "function": {"name": "bad name"}}], None, "tools"),
        ([add, add], None, "tools"),
        ([add], "sometimes", "tool_choice"),
        ([add], {"type": "function", "function": {"name": "mul"}}, "tool_choice"),
        (None, "required", "tool_choice"),
    ],
)
def test_bad_tools_or_choice_are_refused_naming_the_field(
    tools: object, choice: object, field: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_tools(tools, choice)
    assert caught.value.field == field


# -- rendering and families --------------------------------------------------------------


def test_tools_are_rendered_through_the_models_own_template() -> None:
    engine = Replies("Hello")
    make_llm(engine).chat(QUESTION, tools=[add])
    assert "<tools>" in engine.rendered[0] and '"name": "add"' in engine.rendered[0]


def test_tool_choice_none_renders_no_tools_and_never_calls() -> None:
    engine = Replies(call_text("add", {"a": 1, "b": 2}))
    result = make_llm(engine).chat(QUESTION, tools=[add], tool_choice="none")
    assert "<tools>" not in engine.rendered[0]
    assert result.tool_calls == () and result.finish_reason == "stop"


def test_a_template_without_tools_is_a_typed_error() -> None:
    llm = make_llm(Replies("x", template=TEMPLATE))
    with pytest.raises(errors.ToolsUnsupported, match="no tools section"):
        llm.chat(QUESTION, tools=[add])


@pytest.mark.parametrize(
    ("template", "family"),
    [
        (QWEN, "hermes"),
        ("{% if tools %}[AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]", "mistral"),
        ("{% for t in tools %}{% endfor %}<|python_tag|>", "llama3"),
        ("{% if tools %}{{ tools | tojson }}{% endif %}", "json"),
        (TEMPLATE, None),
    ],
)
def test_the_family_is_read_from_the_template(template: str, family: str | None) -> None:
    assert template_family(template) == family


def test_a_round_trip_renders_arguments_as_a_dict_once() -> None:
    engine = Replies("It is 42.")
    llm = make_llm(engine)
    history = [
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 17, "b": 25}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    assert llm.chat(history, tools=[add]).text == "It is 42."
    assert '{"name": "add", "arguments": {"a": 17, "b": 25}}' in engine.rendered[0]
    assert "<tool_response>\n42\n</tool_response>" in engine.rendered[0]


# -- finding calls --------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        call_text("add", {"a": 17, "b": 25}),
        '{"name": "add", "arguments": {"a": 17, "b": 25}}',
        '[TOOL_CALLS] [{"name": "add", "arguments": {"a": 17, "b": 25}}]',
        '<|python_tag|>{"name": "add", "parameters": {"a": 17, "b": 25}}',
        'Sure.\n```json\n{"name": "add", "arguments": {"a": 17, "b": 25}}\n```',
    ],
)
def test_calls_are_found_in_each_familys_shape(reply: str) -> None:
    result = make_llm(Replies(reply)).chat(QUESTION, tools=[add])
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("add", {"a": 17, "b": 25})]
    assert result.tool_calls[0].id.startswith("call_")
    assert "tool_call" not in result.text and "{" not in result.text


@pytest.mark.parametrize(
    "reply",
    [
        "I would call add with 17 and 25, which gives 42.",
        '```json\n{"name": "subtract", "arguments": {"a": 1}}\n```',
        '{"answer": 42}',
        "```python\nprint(add(17, 25))\n```",
    ],
)
def test_prose_and_json_that_names_no_tool_are_never_calls(reply: str) -> None:
    result = make_llm(Replies(reply)).chat(QUESTION, tools=[add])
    assert result.tool_calls == () and result.finish_reason == "stop"
    assert result.text == reply


def test_several_calls_one_a_line_are_all_found() -> None:
    reply = call_text("add", {"a": 1, "b": 2}) + "\n" + call_text("weather", {"city": "Oslo"})
    result = make_llm(Replies(reply)).chat(QUESTION, tools=[add, weather])
    assert [c.name for c in result.tool_calls] == ["add", "weather"]


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("<tool_call>\nnot json\n</tool_call>", "not JSON"),
        (call_text("mul", {"a": 1}), "not a tool here"),
        (call_text("add", {"a": "seventeen", "b": 25}), "breaks its schema"),
    ],
)
def test_a_malformed_call_is_a_typed_error_with_its_text(reply: str, match: str) -> None:
    with pytest.raises(errors.ToolCallInvalid, match=match) as caught:
        make_llm(Replies(reply)).chat(QUESTION, tools=[add])
    assert caught.value.text


def test_a_schema_tool_is_checked_with_json_schema() -> None:
    pytest.importorskip("jsonschema")
    spec = {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
            },
        },
    }
    with pytest.raises(errors.ToolCallInvalid, match="breaks its schema"):
        make_llm(Replies(call_text("add", {"b": 1}))).chat(QUESTION, tools=[spec])


def test_a_call_cut_by_max_tokens_stays_text() -> None:
    reply = call_text("add", {"a": 17, "b": 25})
    result = make_llm(Replies(reply)).chat(QUESTION, tools=[add], max_tokens=20)
    assert result.finish_reason == "length" and result.tool_calls == ()
    assert result.text == reply[:20]


# -- streaming ---------------------------------------------------------------------------


def test_streamed_deltas_make_the_same_calls_and_text() -> None:
    reply = "Let me add.\n" + call_text("add", {"a": 17, "b": 25})
    llm = make_llm(Replies(reply, reply))
    chunks = list(llm.stream(QUESTION, tools=[add]))
    whole = llm.chat(QUESTION, tools=[add])
    deltas = [d for c in chunks for d in c.tool_calls]
    streamed = assemble(deltas)
    assert [(c.name, c.arguments) for c in streamed] == [
        (c.name, c.arguments) for c in whole.tool_calls
    ]
    assert "".join(c.text for c in chunks) == whole.text == "Let me add."
    assert chunks[-1].finish_reason == "tool_calls"


def test_prose_streams_before_the_call_closes() -> None:
    reply = "Adding now. " + call_text("add", {"a": 1, "b": 2})
    chunks = iter(make_llm(Replies(reply)).stream(QUESTION, tools=[add]))
    first = next(chunks)
    assert first.text == "A" and first.tool_calls == ()


def test_assemble_joins_fragments_by_index() -> None:
    deltas = [
        ToolCallDelta(0, "call_a", "add", '{"a": 1,'),
        ToolCallDelta(1, "call_b", "weather", '{"city": "Oslo"}'),
        ToolCallDelta(0, arguments=' "b": 2}'),
    ]
    calls = assemble(deltas)
    assert [(c.id, c.arguments) for c in calls] == [
        ("call_a", {"a": 1, "b": 2}),
        ("call_b", {"city": "Oslo"}),
    ]


# -- forcing a call ----------------------------------------------------------------------


def test_required_and_named_choices_compile_a_call_grammar() -> None:
    pytest.importorskip("llguidance")
    toolset = parse_tools([add, weather], {"type": "function", "function": {"name": "weather"}})
    assert toolset is not None and toolset.must_call
    grammar = toolset.call_grammar().grammar
    assert '"const": "weather"' in grammar and '"const": "add"' not in grammar


def test_the_call_schema_admits_exactly_the_calls_the_grammar_does() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("llguidance")
    toolset = parse_tools([add, weather], "required")
    assert toolset is not None
    schema = toolset.call_schema().schema
    assert schema is not None
    valid = jsonschema.Draft202012Validator(schema)
    assert valid.is_valid({"name": "add", "arguments": {"a": 1, "b": 2}})
    assert valid.is_valid({"name": "weather", "arguments": {"city": "Oslo"}})
    assert not valid.is_valid({"name": "add", "arguments": {"city": "Oslo"}})
    assert not valid.is_valid({"name": "shell", "arguments": {}})
    named = parse_tools([add, weather], {"type": "function", "function": {"name": "add"}})
    assert named is not None and named.call_schema().schema == schema["anyOf"][0]


def test_required_on_an_engine_without_a_mask_is_refused_by_name() -> None:
    with pytest.raises(errors.UnsupportedFeature, match="cannot force a tool call"):
        make_llm(Replies("x")).chat(QUESTION, tools=[add], tool_choice="required")


def test_tools_with_generate_or_response_format_are_refused() -> None:
    llm = make_llm(Replies("x"))
    with pytest.raises(errors.InvalidRequest, match="generate"):
        llm.generate("hi", tools=[add])


# -- run_tools=True --------------------------------------------------------------------------


def test_run_tools_calls_feeds_back_and_answers() -> None:
    engine = Replies(call_text("add", {"a": 17, "b": 25}), "17 plus 25 is 42.")
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True)
    assert result.text == "17 plus 25 is 42." and result.tool_calls == ()
    assert "<tool_response>\n42\n</tool_response>" in engine.rendered[1]


def test_a_tools_exception_goes_back_to_the_model_as_its_result() -> None:
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    engine = Replies(call_text("divide", {"a": 1, "b": 0}), "Cannot divide by zero.")
    result = make_llm(engine).chat("1/0?", tools=[divide], run_tools=True)
    assert result.text == "Cannot divide by zero."
    assert "error: ZeroDivisionError: division by zero" in engine.rendered[1]


def test_a_repeated_call_ends_the_rounds_with_an_answer_without_tools() -> None:
    call = call_text("add", {"a": 17, "b": 25})
    engine = Replies(call, call, "42.")
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True)
    assert result.text == "42." and len(engine.prompts) == 3
    assert "<tools>" not in engine.rendered[2]


def test_a_call_written_as_text_after_a_result_ends_the_rounds() -> None:
    # 4-bit models answer a result by writing the call again as JSON lines (no <tool_call>),
    # cut off by max_tokens, sometimes after a stray ">": not an answer, and not a call.
    written = '>{"name": "add", "arguments": {"a": 17, "b": 25}}\n{"name": "add", "argu'
    engine = Replies(call_text("add", {"a": 17, "b": 25}), written, "42.")
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True)
    assert result.text == "42." and len(engine.prompts) == 3
    assert "<tools>" not in engine.rendered[2]


def test_a_new_call_beside_call_shaped_prose_after_a_result_still_runs() -> None:
    second = call_text("add", {"a": 1, "b": 2}) + ' like {"name": "add", "arguments": {}}'
    engine = Replies(call_text("add", {"a": 17, "b": 25}), second, "Done.")
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True)
    assert result.text == "Done." and len(engine.prompts) == 3
    assert "<tool_response>\n3\n</tool_response>" in engine.rendered[2]


def test_json_naming_no_tool_after_a_result_is_the_answer() -> None:
    engine = Replies(call_text("add", {"a": 17, "b": 25}), '{"sum": 42}')
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True)
    assert result.text == '{"sum": 42}' and len(engine.prompts) == 2


def test_rounds_are_bounded() -> None:
    engine = Replies(*(call_text("add", {"a": i, "b": 1}) for i in range(10)))
    result = make_llm(engine).chat(QUESTION, tools=[add], run_tools=True, max_tool_rounds=2)
    assert len(engine.prompts) == 3 and result.tool_calls == ()


def test_async_tools_run_under_achat() -> None:
    async def slow_add(a: int, b: int) -> int:
        """Add two integers, slowly."""
        await asyncio.sleep(0)
        return a + b

    engine = Replies(call_text("slow_add", {"a": 17, "b": 25}), "42")
    result = asyncio.run(make_llm(engine).achat(QUESTION, tools=[slow_add], run_tools=True))
    assert result.text == "42" and "<tool_response>\n42\n" in engine.rendered[1]


def test_run_tools_needs_functions_and_chat() -> None:
    spec = {"type": "function", "function": {"name": "mul"}}
    llm = make_llm(Replies("x"))
    with pytest.raises(errors.InvalidRequest, match="schema without one"):
        llm.chat(QUESTION, tools=[spec], run_tools=True)
    with pytest.raises(errors.InvalidRequest, match="chat"):
        llm.stream(QUESTION, tools=[add], run_tools=True)


def test_the_answers_message_carries_its_calls_in_openai_shape() -> None:
    result = make_llm(Replies(call_text("add", {"a": 1, "b": 2}))).chat(QUESTION, tools=[add])
    message = result.message
    assert message["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
