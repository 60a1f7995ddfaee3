"""response_format in the core: parsing, compile checks, validation, refusal, parsed.

The scripted engine replays a fixed reply without applying any mask, standing in for a
runtime that claims to constrain natively: so these tests prove what the core checks on
its own (real masking runs in tests/contract/test_structured.py).
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from slmkit import errors
from slmkit.backends.base import Capabilities
from slmkit.structured import parse_response_format

from .conftest import make_llm
from .scripted_engine import ScriptedEngine

for _package in ("llguidance", "jsonschema"):
    pytest.importorskip(
        _package, reason='structured extra not installed: pip install "slmkit[structured]"'
    )

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}},
    "required": ["n"],
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}}


class Count(BaseModel):
    n: int


class NativeEngine(ScriptedEngine):
    capabilities = Capabilities(
        constraint="native", constraint_types=frozenset({"json_schema", "json_object"})
    )


def test_a_pydantic_class_becomes_its_json_schema() -> None:
    parsed = parse_response_format(Count)
    assert parsed is not None and parsed.kind == "json_schema"
    assert parsed.schema == Count.model_json_schema()
    assert parsed.openai is not None
    assert parsed.openai["json_schema"]["name"] == "Count"


def test_openai_json_schema_keeps_name_schema_and_strict() -> None:
    value = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA, "strict": True}}
    parsed = parse_response_format(value)
    assert parsed is not None and parsed.openai == value


@pytest.mark.parametrize(
    "value",
    [{"type": "xml"}, {"type": "json_schema"}, {"type": "regex"}, "json", 42, {"schema": {}}],
)
def test_a_format_that_is_not_understood_is_invalid_request(value: object) -> None:
    with pytest.raises(errors.InvalidRequest, match="response_format"):
        parse_response_format(value)


def test_an_unsupported_keyword_is_named_before_any_generation() -> None:
    engine = NativeEngine('{"n": 1}')
    schema = {"type": "object", "properties": {"a": {"if": {"type": "string"}}}}
    with pytest.raises(errors.UnsupportedSchema, match="if") as caught:
        make_llm(engine).chat(
            "hi",
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
    assert caught.value.keyword == "if"
    assert caught.value.field == "response_format"
    assert engine.prompts == []


def test_a_bad_regex_is_refused_up_front() -> None:
    with pytest.raises(errors.UnsupportedSchema, match="look-around"):
        parse_response_format({"type": "regex", "pattern": "(?<=a)b"})


def test_an_undeclared_engine_refuses_naming_backend_and_type() -> None:
    engine = ScriptedEngine('{"n": 1}')
    with pytest.raises(errors.UnsupportedFeature, match="'scripted'.*'json_schema'"):
        make_llm(engine).chat("hi", response_format=Count)
    assert engine.prompts == []


def test_an_undeclared_type_is_refused_on_a_constraining_engine() -> None:
    with pytest.raises(errors.UnsupportedFeature, match="'regex'"):
        make_llm(NativeEngine("1")).chat("hi", response_format={"type": "regex", "pattern": "1"})


def test_a_valid_answer_sets_parsed_to_the_model_instance() -> None:
    result = make_llm(NativeEngine('{"n": 3}')).chat("hi", response_format=Count)
    assert result.finish_reason == "stop"
    assert result.parsed == Count(n=3)


def test_a_dict_schema_gives_the_validated_dict() -> None:
    assert make_llm(NativeEngine('{"n": 3}')).chat("hi", response_format=JSON_SCHEMA).parsed == {
        "n": 3
    }


@pytest.mark.parametrize("reply", ['{"n": -1}', '{"m": 1}', '{"n": 1', "[1]", "no"])
def test_an_invalid_answer_that_stopped_is_a_typed_error(reply: str) -> None:
    with pytest.raises(errors.StructuredOutputInvalid) as caught:
        make_llm(NativeEngine(reply)).chat("hi", response_format=JSON_SCHEMA)
    assert caught.value.text == reply


def test_json_object_refuses_an_array() -> None:
    with pytest.raises(errors.StructuredOutputInvalid, match="not an object"):
        make_llm(NativeEngine("[1]")).chat("hi", response_format={"type": "json_object"})


def test_a_cut_answer_has_length_and_no_parsed() -> None:
    result = make_llm(NativeEngine('{"n": 12345}')).chat("hi", response_format=Count, max_tokens=4)
    assert result.finish_reason == "length"
    assert result.parsed is None


def test_the_last_chunk_carries_parsed_and_the_others_none() -> None:
    chunks = list(make_llm(NativeEngine('{"n": 7}')).stream("hi", response_format=Count))
    assert "".join(c.text for c in chunks) == '{"n": 7}'
    assert chunks[-1].parsed == Count(n=7)
    assert all(c.parsed is None for c in chunks[:-1])


def test_async_chat_validates_the_same_way() -> None:
    llm = make_llm(NativeEngine('{"n": 2}'))
    assert asyncio.run(llm.achat("hi", response_format=Count)).parsed == Count(n=2)
    with pytest.raises(errors.StructuredOutputInvalid):
        asyncio.run(make_llm(NativeEngine("{}")).achat("hi", response_format=Count))


def test_without_response_format_parsed_stays_none() -> None:
    assert make_llm(NativeEngine('{"n": 2}')).chat("hi").parsed is None
