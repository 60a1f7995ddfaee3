"""JSON schemas written as compact EBNF (what the openvino backend sends OpenVINO GenAI).

Each grammar is checked by a second engine: llguidance reads it as GBNF over a byte-level
vocabulary, and every document below must be accepted or refused as the schema says.
tests/contract/test_structured.py runs the same grammars in OpenVINO itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from slmkit.backends._json_ebnf import json_schema_ebnf

llguidance = pytest.importorskip(
    "llguidance", reason='structured extra not installed: pip install "slmkit[structured]"'
)
from llguidance.gbnf_to_lark import gbnf_to_lark  # noqa: E402


class _Bytes:
    """A vocabulary of the 256 bytes and an end token."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([b]) for b in range(256)] + [b"<eos>"]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


TOKENIZER = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_Bytes()))


def accepts(ebnf: str, text: str) -> bool:
    grammar = llguidance.LLMatcher.grammar_from_lark(gbnf_to_lark(ebnf))
    matcher = llguidance.LLMatcher(TOKENIZER, grammar, log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    data = list(text.encode("utf-8"))
    return matcher.validate_tokens(data) == len(data) and (
        matcher.consume_tokens(data) and matcher.is_accepting()
    )


REPLY = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 5},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
    },
    "required": ["answer", "score"],
}
NESTED = {
    "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    "type": "object",
    "properties": {"where": {"$ref": "#/$defs/Point"}, "ok": {"type": "boolean"}},
    "required": ["where", "ok"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "document"),
    [
        (REPLY, {"answer": "hi", "score": 10}),
        (REPLY, {"answer": "", "score": 0, "note": None}),
        (REPLY, {"answer": "a\nb", "score": 3, "note": "x", "tags": ["b", "a"]}),
        (REPLY, {"answer": "x", "score": 1, "tags": []}),
        (NESTED, {"where": {"x": -1.5e3}, "ok": True}),
        (NESTED, {"where": {}, "ok": False}),
        ({"type": "object"}, {"any": [1, {"deep": None}], "b": "c"}),
        ({"type": "array", "items": {"const": 7}, "minItems": 2}, [7, 7, 7]),
    ],
)
def test_valid_compact_documents_are_accepted(schema: dict[str, Any], document: Any) -> None:
    ebnf = json_schema_ebnf(schema)
    assert ebnf is not None
    assert accepts(ebnf, json.dumps(document, separators=(",", ":"), ensure_ascii=False))


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        (REPLY, '{ "answer":"hi","score":1}'),  # free whitespace: the loop it prevents
        (REPLY, '{"answer":"hi","score": 1}'),
        (REPLY, '{"score":1,"answer":"hi"}'),  # properties stay in their order
        (REPLY, '{"answer":"hi"}'),  # a required property left out
        (REPLY, '{"answer":"toolong","score":1}'),  # maxLength
        (REPLY, '{"answer":"hi","score":11}'),  # maximum
        (REPLY, '{"answer":"hi","score":1,"extra":1}'),  # objects are closed
        (REPLY, '{"answer":"hi","score":1,"tags":["a","b","a"]}'),  # maxItems
        (REPLY, '{"answer":"hi","score":1,}'),  # no stray comma
        (NESTED, '{"where":{"x":01},"ok":true}'),  # JSON numbers have no leading zero
        ({"type": "array", "items": {"const": 7}, "minItems": 2}, "[7]"),
    ],
)
def test_documents_the_schema_refuses_are_refused(schema: dict[str, Any], text: str) -> None:
    ebnf = json_schema_ebnf(schema)
    assert ebnf is not None
    assert not accepts(ebnf, text)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a+$"},
        {"type": "string", "format": "date"},
        {"type": "number", "minimum": 0.5},
        {"type": "integer", "minimum": -5},  # a lower bound alone below zero
        {"type": "integer", "minimum": 0, "maximum": 10**6},  # too wide to write out
        {"not": {"type": "string"}},
        {"type": "object", "properties": {"a": {}}, "patternProperties": {"b": {}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"$ref": "https://example.com/schema.json"},
    ],
)
def test_what_is_not_written_out_falls_back(schema: dict[str, Any]) -> None:
    assert json_schema_ebnf(schema) is None


def test_a_recursive_reference_is_a_recursive_rule() -> None:
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                "required": ["kids"],
            }
        },
        "$ref": "#/$defs/Node",
    }
    ebnf = json_schema_ebnf(tree)
    assert ebnf is not None
    assert accepts(ebnf, '{"kids":[{"kids":[]},{"kids":[{"kids":[]}]}]}')
    assert not accepts(ebnf, '{"kids":[{}]}')
