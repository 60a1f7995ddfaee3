"""A JSON schema as a compact EBNF grammar (xgrammar's dialect, which OpenVINO GenAI takes).

OpenVINO's own JSON-schema mode lets whitespace in anywhere, and a small model can spend
every token it has on spaces after a colon. The same schema written as EBNF with no free
whitespace leaves it nowhere to loop, as llguidance's compact JSON does on the engines with
a logits hook. :func:`json_schema_ebnf` covers the schemas applications send (objects,
arrays, strings with lengths, enums and consts, integers with small ranges, numbers,
booleans, null, anyOf/oneOf, local ``$ref``); for anything else it returns None and the
caller uses OpenVINO's JSON-schema mode. Objects are closed: extra properties would still
validate, so leaving them out only narrows what the model may say.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["json_schema_ebnf"]

#: The widest integer range written out as alternatives; wider ranges are not covered.
MAX_ENUMERATED_RANGE = 1000

_BASE_RULES = {
    "char": r'[^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": r'"\"" char* "\""',
    "integer": r'"-"? ("0" | [1-9] [0-9]*)',
    "number": r'integer ("." [0-9]+)? ([eE] [-+]? [0-9]+)?',
    "boolean": r'"true" | "false"',
    "null": r'"null"',
    "value": "object | array | string | number | boolean | null",
    "object": r'"{" (string ":" value ("," string ":" value)*)? "}"',
    "array": r'"[" (value ("," value)*)? "]"',
}

#: Keywords that never change which documents are valid (annotations, and the $defs a
#: $ref points into).
_INERT = frozenset(
    {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated"}
    | {"$defs", "definitions"}
)


class _Uncovered(Exception):
    """The schema uses something this translation does not write out."""


def json_schema_ebnf(schema: dict[str, Any]) -> str | None:
    """The EBNF of compact JSON documents valid under ``schema``, or None if not covered."""
    try:
        writer = _Writer(schema)
        root = writer.rule_for(schema)
    except (_Uncovered, RecursionError):
        return None
    lines = [f"root ::= {root}"]
    lines += [f"{name} ::= {body}" for name, body in writer.rules.items()]
    return "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    """An EBNF string literal matching ``value`` written as compact JSON."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False)


class _Writer:
    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self.rules: dict[str, str] = {}
        self._refs: dict[str, str] = {}

    def _base(self, name: str) -> str:
        """A built-in rule, added with the ones it uses."""
        if name not in self.rules:
            self.rules[name] = _BASE_RULES[name]
            for word in _BASE_RULES[name].replace("(", " ").replace(")", " ").split():
                if word.rstrip("*?+") in _BASE_RULES and word.rstrip("*?+") != name:
                    self._base(word.rstrip("*?+"))
        return name

    def _new_rule(self, body: str) -> str:
        name = f"r{len(self.rules)}"
        self.rules[name] = body
        return name

    def rule_for(self, schema: Any) -> str:
        """An EBNF expression for one (sub)schema."""
        if schema is True or schema == {}:
            return self._base("value")
        if not isinstance(schema, dict):
            raise _Uncovered
        keys = set(schema) - _INERT
        if "$ref" in keys:
            if keys != {"$ref"}:
                raise _Uncovered
            return self._ref(schema["$ref"])
        if "const" in keys:
            return _literal(schema["const"])
        if "enum" in keys:
            return "(" + " | ".join(_literal(v) for v in schema["enum"]) + ")"
        for union in ("anyOf", "oneOf"):
            if union in keys:
                if keys != {union}:
                    raise _Uncovered
                return "(" + " | ".join(self.rule_for(s) for s in schema[union]) + ")"
        kind = schema.get("type")
        if isinstance(kind, list):
            return "(" + " | ".join(self.rule_for({**schema, "type": k}) for k in kind) + ")"
        writers: dict[str, Callable[[dict[str, Any], set[str]], str]] = {
            "object": self._object,
            "array": self._array,
            "string": self._string,
            "integer": self._integer,
            "number": self._number,
            "boolean": lambda s, k: self._only(k, set(), "boolean"),
            "null": lambda s, k: self._only(k, set(), "null"),
        }
        if kind not in writers:
            raise _Uncovered
        return writers[kind](schema, keys - {"type"})

    def _only(self, keys: set[str], allowed: set[str], base: str) -> str:
        if keys - allowed:
            raise _Uncovered
        return self._base(base)

    def _ref(self, ref: str) -> str:
        if ref in self._refs:
            return self._refs[ref]
        if not ref.startswith("#/"):
            raise _Uncovered
        target: Any = self._root
        for part in ref[2:].split("/"):
            if not isinstance(target, dict) or part not in target:
                raise _Uncovered
            target = target[part]
        name = f"r{len(self.rules)}"
        self._refs[ref] = name
        self.rules[name] = ""  # reserved: a recursive reference finds the name
        self.rules[name] = self.rule_for(target)
        return name

    def _object(self, schema: dict[str, Any], keys: set[str]) -> str:
        if keys - {"properties", "required", "additionalProperties"}:
            raise _Uncovered
        properties = schema.get("properties")
        if not properties:
            if schema.get("additionalProperties", True) is False:
                return '"{" "}"'
            return self._base("object")
        required = set(schema.get("required", ()))
        if required - set(properties):
            raise _Uncovered  # a required key with no schema: any value, any name
        pairs = [
            (name in required, f'{_literal(name)} ":" {self.rule_for(sub)}')
            for name, sub in properties.items()
        ]
        return '"{" ' + self._members(pairs) + ' "}"'

    def _members(self, pairs: list[tuple[bool, str]]) -> str:
        """Properties in order, optional ones skippable, commas only between present ones.

        Built from the last property back: ``after`` is what may follow a written member
        (each next one with its comma), ``first`` what may stand first (no comma)."""
        after = first = ""
        for need, pair in reversed(pairs):
            lead = f"{pair} {after}".strip()
            follow = f'"," {lead}'
            if need:
                after, first = self._new_rule(follow), self._new_rule(lead)
            elif after:
                after = self._new_rule(f"({follow}) | {after}")
                first = self._new_rule(f"({lead}) | {first}")
            else:
                after, first = self._new_rule(f"({follow})?"), self._new_rule(f"({lead})?")
        return first

    def _array(self, schema: dict[str, Any], keys: set[str]) -> str:
        if keys - {"items", "minItems", "maxItems"}:
            raise _Uncovered
        item = self.rule_for(schema.get("items", True))
        low, high = int(schema.get("minItems", 0)), schema.get("maxItems")
        if high is not None and int(high) < low:
            raise _Uncovered
        if high == 0:
            return '"[" "]"'
        more = f'("," {item})' + _repeat(max(low - 1, 0), None if high is None else int(high) - 1)
        body = f"{item} {more}"
        return f'"[" {body} "]"' if low >= 1 else f'"[" ({body})? "]"'

    def _string(self, schema: dict[str, Any], keys: set[str]) -> str:
        if keys - {"minLength", "maxLength"}:
            raise _Uncovered  # pattern, format: not written out here
        self._base("char")
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if low == 0 and high is None:
            return self._base("string")
        return r'"\"" char' + _repeat(low, None if high is None else int(high)) + r' "\""'

    def _integer(self, schema: dict[str, Any], keys: set[str]) -> str:
        if keys - {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
            raise _Uncovered
        low, high = _bounds(schema)
        if low is None and high is None:
            return self._base("integer")
        if low is not None and high is None and low >= 0:
            if low == 0:
                return '("0" | [1-9] [0-9]*)'
            raise _Uncovered
        if low is None or high is None or high - low > MAX_ENUMERATED_RANGE:
            raise _Uncovered
        return "(" + " | ".join(f'"{n}"' for n in range(low, high + 1)) + ")"

    def _number(self, schema: dict[str, Any], keys: set[str]) -> str:
        if keys:
            raise _Uncovered  # bounds on a float: not written out here
        return self._base("number")


def _repeat(low: int, high: int | None) -> str:
    if high is None:
        return "*" if low == 0 else ("+" if low == 1 else f"{{{low},}}")
    return f"{{{low},{high}}}"


def _bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """Inclusive integer bounds from minimum/maximum and their exclusive forms."""
    import math

    lows = [math.ceil(schema["minimum"])] if "minimum" in schema else []
    highs = [math.floor(schema["maximum"])] if "maximum" in schema else []
    if "exclusiveMinimum" in schema:
        lows.append(math.floor(schema["exclusiveMinimum"]) + 1)
    if "exclusiveMaximum" in schema:
        highs.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    return (max(lows) if lows else None), (min(highs) if highs else None)
