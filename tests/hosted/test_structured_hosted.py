"""response_format on hosted backends: sent in the service's form, validated on return.

The fault server answers with text we choose, so a service that returns invalid JSON is
shown to raise a typed error (never a silent ``parsed``); llama-cpp-python's server on
127.0.0.1 shows a real service constrained through the same field.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel

import slmkit
from slmkit import errors

from . import faults as f
from .conftest import HOSTED_BACKENDS, backend_options
from .faults import FaultServer

for _package in ("llguidance", "jsonschema"):
    pytest.importorskip(
        _package, reason='structured extra not installed: pip install "slmkit[structured]"'
    )

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
}


class City(BaseModel):
    city: str
    population: int


def _load(backend: str, server: FaultServer) -> slmkit.LLM:
    options = backend_options(backend, server.url, timeout=5.0, max_retries=0)
    return slmkit.load("fault-model", backend=backend, **options)


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_the_schema_is_sent_and_a_valid_answer_is_parsed(backend: str, faults: FaultServer) -> None:
    faults.queue(f.answer('{"city":"Paris","population":2100000}'))
    with _load(backend, faults) as llm:
        result = llm.chat("A city?", response_format=JSON_SCHEMA)
    assert result.parsed == {"city": "Paris", "population": 2100000}
    sent = faults.seen[-1].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == SCHEMA


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_a_pydantic_model_round_trips(backend: str, faults: FaultServer) -> None:
    faults.queue(f.answer('{"city":"Oslo","population":700000}'))
    with _load(backend, faults) as llm:
        result = llm.chat("A city?", response_format=City)
    assert result.parsed == City(city="Oslo", population=700000)


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
@pytest.mark.parametrize(
    "answer",
    ['{"city": "Paris"', '{"city":"Paris","population":"many"}', "Sure! Here is JSON:"],
    ids=["cut-json", "wrong-type", "prose"],
)
def test_an_invalid_answer_is_a_typed_error(backend: str, faults: FaultServer, answer: str) -> None:
    faults.queue(f.answer(answer))
    with _load(backend, faults) as llm, pytest.raises(errors.StructuredOutputInvalid) as caught:
        llm.chat("A city?", response_format=JSON_SCHEMA)
    assert caught.value.text == answer


@pytest.mark.parametrize("backend", HOSTED_BACKENDS)
def test_json_object_refuses_a_json_array(backend: str, faults: FaultServer) -> None:
    faults.queue(f.answer("[1, 2]"))
    with _load(backend, faults) as llm, pytest.raises(errors.StructuredOutputInvalid):
        llm.chat("An object?", response_format={"type": "json_object"})
    assert faults.seen[-1].body["response_format"] == {"type": "json_object"}


def test_the_stream_ends_with_the_parsed_value_async(faults: FaultServer) -> None:
    faults.queue(f.answer('{"city":"Rome","population":2800000}'))

    async def chunks() -> list[slmkit.Chunk]:
        with _load("openai", faults) as llm:
            return [c async for c in llm.astream("A city?", response_format=City)]

    parts = asyncio.run(chunks())
    assert "".join(c.text for c in parts) == '{"city":"Rome","population":2800000}'
    assert parts[-1].parsed == City(city="Rome", population=2800000)
    assert all(c.parsed is None for c in parts[:-1])


def test_regex_is_refused_by_name_before_any_request(faults: FaultServer) -> None:
    with (
        _load("openai", faults) as llm,
        pytest.raises(errors.UnsupportedFeature, match="'openai'.*'regex'"),
    ):
        llm.chat("Digits?", response_format={"type": "regex", "pattern": r"\d+"})
    assert faults.requests == 0


@pytest.mark.slow
def test_llama_server_answers_a_json_object(
    llama_server: str, server_options: dict[str, Any]
) -> None:
    options = backend_options("openai", llama_server, **server_options)
    with slmkit.load("qwen-local", backend="openai", **options) as llm:
        result = llm.chat(
            "Name a big city and its population, as JSON.",
            response_format={"type": "json_object"},
            max_tokens=64,
        )
    assert result.finish_reason == "stop", result.text
    assert isinstance(result.parsed, dict)
    assert result.parsed == json.loads(result.text)


@pytest.mark.slow
def test_llama_server_without_json_schema_is_a_typed_error(
    llama_server: str, server_options: dict[str, Any]
) -> None:
    """llama-cpp-python's server knows only "text" and "json_object": its refusal arrives
    as a typed ServiceError, never as unconstrained text passed off as parsed."""
    options = backend_options("openai", llama_server, **server_options)
    with (
        slmkit.load("qwen-local", backend="openai", **options) as llm,
        pytest.raises(errors.ServiceError, match="json_object"),
    ):
        llm.chat("A city?", response_format=JSON_SCHEMA, max_tokens=32)
