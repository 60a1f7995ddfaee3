"""Structured output: ``response_format=`` parsed once, compiled up front, validated after.

A response format (a pydantic model class, OpenAI's ``json_schema`` / ``json_object``
dicts, or the ``regex`` / ``grammar`` extensions) becomes a :class:`ResponseFormat`: an
llguidance grammar checked before any generation, the dict a hosted service is sent, and
:meth:`ResponseFormat.validate` that turns the final text into ``Completion.parsed``.
Token engines apply it with a :class:`TokenConstraint`, the allowed-token mask of each step
(docs/structured-output.md).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    InvalidRequest,
    StructuredOutputInvalid,
    UnsupportedFeature,
    UnsupportedSchema,
)
from .types import Chunk

if TYPE_CHECKING:
    import numpy as np
    from llguidance import LLMatcher, LLTokenizer
    from numpy.typing import NDArray
    from pydantic import BaseModel

__all__ = [
    "ResponseFormat",
    "TokenConstraint",
    "awith_parsed",
    "parse_response_format",
    "response_format_file",
    "with_parsed",
]

#: Every response_format type; an engine declares the ones it applies.
CONSTRAINT_TYPES = frozenset({"json_schema", "json_object", "regex", "grammar"})

_FIX = (
    "pass a pydantic model class, {'type': 'json_schema', 'json_schema': {'name': ..., "
    "'schema': {...}}}, {'type': 'json_object'}, {'type': 'regex', 'pattern': ...} or "
    "{'type': 'grammar', 'lark': ...}"
)


@dataclass(frozen=True)
class ResponseFormat:
    """One request's output constraint, already compiled and checked."""

    kind: str
    grammar: str
    schema: dict[str, Any] | None = None
    model: type[BaseModel] | None = None
    pattern: str | None = None
    #: What an OpenAI-compatible service is sent (None: the type has no OpenAI form).
    openai: dict[str, Any] | None = None

    def validate(self, text: str) -> Any:
        """The parsed value of ``text``; StructuredOutputInvalid when it breaks the format."""
        if self.kind == "regex":
            assert self.pattern is not None
            if re.fullmatch(self.pattern, text) is None:
                raise StructuredOutputInvalid(
                    f"the answer does not match the pattern {self.pattern!r}", text=text
                )
            return text
        if self.kind == "grammar":
            return text  # llguidance accepted it token by token: the mask is the check
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StructuredOutputInvalid(
                f"the answer is not valid JSON: {exc}", text=text
            ) from None
        if self.model is not None:
            from pydantic import ValidationError

            try:
                return self.model.model_validate(value)
            except ValidationError as exc:
                raise StructuredOutputInvalid(
                    f"the answer does not fit {self.model.__name__}: {exc.errors()[0]['msg']}",
                    text=text,
                ) from None
        if self.schema is None:
            if not isinstance(value, dict):
                raise StructuredOutputInvalid("the answer is JSON but not an object", text=text)
            return value
        _check_schema(self.schema, value, text)
        return value


def _check_schema(schema: dict[str, Any], value: Any, text: str) -> None:
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        raise _missing("jsonschema") from None

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise StructuredOutputInvalid(
            f"the answer breaks the schema at {where}: {error.message}", text=text
        )


def parse_response_format(value: Any) -> ResponseFormat | None:
    """Normalise ``response_format=`` and compile it; raise before any generation."""
    if value is None:
        return None
    if isinstance(value, ResponseFormat):
        return value
    if isinstance(value, type):
        from pydantic import BaseModel

        if issubclass(value, BaseModel):
            schema = value.model_json_schema()
            return _json_schema(schema, value.__name__, strict=True, model=value)
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise InvalidRequest(
            f"response_format={value!r:.80} is not understood: {_FIX}", field="response_format"
        )
    kind = value["type"]
    if kind == "json_object":
        return _compiled(
            ResponseFormat(
                "json_object",
                _grammar_from_schema({"type": "object"}),
                openai={"type": "json_object"},
            )
        )
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise InvalidRequest(
                "response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}",
                field="response_format",
            )
        return _json_schema(
            spec["schema"], str(spec.get("name", "answer")), bool(spec.get("strict", False))
        )
    if kind == "regex" and isinstance(value.get("pattern"), str):
        LLMatcher = _llguidance()

        pattern = value["pattern"]
        return _compiled(
            ResponseFormat("regex", LLMatcher.grammar_from_regex(pattern), pattern=pattern)
        )
    if kind == "grammar" and isinstance(value.get("lark"), str):
        LLMatcher = _llguidance()

        return _compiled(ResponseFormat("grammar", LLMatcher.grammar_from_lark(value["lark"])))
    raise InvalidRequest(
        f"response_format type {kind!r} is not understood: {_FIX}", field="response_format"
    )


def response_format_file(path: Path) -> dict[str, Any]:
    """A response_format from a file: a bare JSON Schema, or a dict with a "type"."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(
            f"--json-schema {path}: cannot read a JSON schema ({exc}); pass a JSON file",
            field="response_format",
        ) from None
    if isinstance(value, dict) and value.get("type") in ("json_schema", "json_object"):
        return value
    return {"type": "json_schema", "json_schema": {"name": path.stem, "schema": value}}


def _json_schema(
    schema: dict[str, Any], name: str, strict: bool, model: type[BaseModel] | None = None
) -> ResponseFormat:
    openai = {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }
    return _compiled(
        ResponseFormat("json_schema", _grammar_from_schema(schema), schema, model, openai=openai)
    )


def _grammar_from_schema(schema: dict[str, Any]) -> str:
    LLMatcher = _llguidance()

    # Compact JSON: no free whitespace a model could loop in until max_tokens.
    grammar: str = LLMatcher.grammar_from_json_schema(
        schema, defaults={"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    )
    return grammar


def _compiled(response_format: ResponseFormat) -> ResponseFormat:
    """Refuse a grammar llguidance cannot compile, naming what it could not handle."""
    LLMatcher = _llguidance()

    is_error, messages = LLMatcher.validate_grammar_with_warnings(response_format.grammar)
    if is_error:
        message = messages[0] if messages else "unknown error"
        keyword = _keyword(message)
        raise UnsupportedSchema(
            f"response_format ({response_format.kind}) cannot be compiled: {message}",
            keyword=keyword,
        )
    return response_format


def _llguidance() -> type[LLMatcher]:
    try:
        from llguidance import LLMatcher
    except ImportError:
        raise _missing("llguidance") from None
    matcher: type[LLMatcher] = LLMatcher
    return matcher


def _missing(package: str) -> UnsupportedFeature:
    return UnsupportedFeature(f'response_format needs {package}: pip install "slmkit[structured]"')


def _keyword(message: str) -> str | None:
    """The schema keyword an llguidance error names (``Unimplemented keys: ["not"]``)."""
    found = re.search(r'keys?:?\s*\[?"([^"]+)"', message)
    if found:
        return found.group(1)
    return "format" if message.startswith("Unknown format") else None


@functools.cache
def _bias_rows() -> NDArray[np.float32]:
    """Row b: 0 for each set bit of the byte b (little-endian), -inf for each clear one.

    Indexing it by the mask's bytes gives the additive bias in one gather, three times
    faster than unpacking the bits into a boolean index."""
    import numpy as np

    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
    return np.where(bits == 1, 0.0, -np.inf).astype(np.float32)


class TokenConstraint:
    """The allowed-token mask of each step, for engines with a logits hook.

    ``apply(logits)`` sets every disallowed id to -inf (ids past the tokenizer's size, as in
    Qwen's padded vocabularies, are always disallowed); ``consume(token)`` advances it by the
    token the engine yields; ``done`` says the grammar cannot go on.
    """

    def __init__(self, tokenizer: LLTokenizer, response_format: ResponseFormat) -> None:
        matcher_class = _llguidance()
        self._matcher: LLMatcher = matcher_class(tokenizer, response_format.grammar, log_level=0)
        self._size = tokenizer.vocab_size
        self.mask_seconds = 0.0
        self.steps = 0

    def apply(self, logits: NDArray[np.float32]) -> NDArray[np.float32]:
        import time

        import numpy as np

        began = time.perf_counter()
        bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        bias = _bias_rows()[bits].reshape(-1)  # one row of 8 biases per mask byte
        width = min(len(logits), len(bias), self._size)
        logits[:width] += bias[:width]
        logits[width:] = -np.inf
        self.mask_seconds += time.perf_counter() - began
        self.steps += 1
        return logits

    @property
    def mean_mask_us(self) -> float:
        """Microseconds per step spent computing and applying the mask."""
        return 1e6 * self.mask_seconds / max(self.steps, 1)

    def consume(self, token: int) -> None:
        self._matcher.consume_token(token)

    @property
    def done(self) -> bool:
        return bool(self._matcher.is_stopped())


def with_parsed(
    chunks: Generator[Chunk, None, None], response_format: ResponseFormat
) -> Generator[Chunk, None, None]:
    """Pass the chunks through; the final one carries ``parsed`` when it ended with "stop"."""
    parts: list[str] = []
    try:
        for chunk in chunks:
            parts.append(chunk.text)
            yield _finished(chunk, parts, response_format)
    finally:
        chunks.close()


async def awith_parsed(
    chunks: AsyncIterator[Chunk], response_format: ResponseFormat
) -> AsyncIterator[Chunk]:
    """Async twin of :func:`with_parsed`."""
    parts: list[str] = []
    async for chunk in chunks:
        parts.append(chunk.text)
        yield _finished(chunk, parts, response_format)


def _finished(chunk: Chunk, parts: list[str], response_format: ResponseFormat) -> Chunk:
    if chunk.finish_reason != "stop":
        return chunk  # "length" (or a refusal) leaves parsed None: the text may be cut
    return replace(chunk, parsed=response_format.validate("".join(parts)))
