"""Tools: ``tools=`` and ``tool_choice=`` parsed once, calls checked against their schemas.

A tool is OpenAI's ``{"type": "function", "function": {"name", "description",
"parameters"}}`` or a Python function, whose schema comes from its signature, type hints
and docstring (through pydantic). A :class:`ToolSet` is one request's tools and choice:
what a template renders and a hosted service is sent, the check every call passes, the
grammar that forces a call, and, for functions, how a call is run (docs/tools.md).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequest, ToolCallInvalid, UnsupportedFeature
from .types import ToolCall

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .structured import ResponseFormat

__all__ = ["Tool", "ToolSet", "arguments_object", "call_id", "parse_tools"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHOICES = ("auto", "none", "required")
_CHOICE_FIX = 'use "auto", "none", "required" or {"type": "function", "function": {"name": ...}}'


def call_id() -> str:
    """A fresh id for a call the model made (OpenAI's ``call_...`` form)."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class Tool:
    """One tool: its name, description and JSON schema, and the function behind it (if any)."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any] | None = None
    #: The pydantic model of a function's arguments: it validates and converts them.
    arguments_model: type[BaseModel] | None = None

    @classmethod
    def from_function(cls, function: Callable[..., Any]) -> Tool:
        """The tool a Python function makes: name, first docstring paragraph, and the
        schema of its parameters (type hints; ``Args:`` or ``:param x:`` lines describe them)."""
        from pydantic import Field, create_model

        name = getattr(function, "__name__", "")
        doc = inspect.getdoc(function) or ""
        described = _parameter_docs(doc)
        fields: dict[str, Any] = {}
        hints = typing.get_type_hints(function)
        for parameter in inspect.signature(function).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise InvalidRequest(
                    f"tool {name!r}: *args and **kwargs cannot be described to a model; "
                    "name each parameter",
                    field="tools",
                )
            default = ... if parameter.default is parameter.empty else parameter.default
            annotation = hints.get(parameter.name, Any)
            fields[parameter.name] = (
                annotation,
                Field(default, description=described.get(parameter.name)),
            )
        model = create_model(f"{name}_arguments", **fields)
        schema = _without_titles(model.model_json_schema())
        summary = doc.split("\n\n")[0].strip() if doc else ""
        return cls(_checked_name(name), summary, schema, function, model)

    @classmethod
    def from_openai(cls, value: Mapping[str, Any], where: str = "tools") -> Tool:
        spec = value.get("function") if value.get("type") == "function" else None
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise InvalidRequest(
                f"{where} must be a Python function or {{'type': 'function', 'function': "
                f"{{'name': ..., 'description': ..., 'parameters': {{...}}}}}}",
                field="tools",
            )
        parameters = spec.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, Mapping):
            raise InvalidRequest(
                f"{where}.function.parameters must be a JSON schema object", "tools"
            )
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise InvalidRequest(f"{where}.function.description must be a str", field="tools")
        return cls(_checked_name(spec["name"]), description, dict(parameters))

    def to_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def check(self, arguments: Any, text: str) -> dict[str, Any]:
        """``arguments`` when they are an object that fits the schema; ToolCallInvalid if not."""
        checked = arguments_object(self.name, arguments, text)
        if self.arguments_model is not None:
            from pydantic import ValidationError

            try:
                self.arguments_model.model_validate(checked)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = "/".join(map(str, error["loc"])) or "the top level"
                raise ToolCallInvalid(
                    f"the call of {self.name!r} breaks its schema at {where}: {error['msg']}", text
                ) from None
            return checked
        _check_schema(self.name, self.parameters, checked, text)
        return checked


@dataclass(frozen=True)
class ToolSet:
    """One request's tools and ``tool_choice``: "auto", "none", "required", or the name of
    the one function the model must call (``forced``)."""

    tools: tuple[Tool, ...]
    choice: str = "auto"
    forced: str | None = None

    @property
    def calls_allowed(self) -> bool:
        return self.choice != "none"

    @property
    def must_call(self) -> bool:
        return self.choice == "required" or self.forced is not None

    def get(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def openai_tools(self) -> list[dict[str, Any]]:
        return [tool.to_openai() for tool in self.tools]

    def openai_choice(self) -> str | dict[str, Any]:
        if self.forced is not None:
            return {"type": "function", "function": {"name": self.forced}}
        return self.choice

    def check(self, name: Any, arguments: Any, text: str, id: str | None = None) -> ToolCall:
        """The call as a ToolCall; ToolCallInvalid naming what is wrong with it."""
        tool = self.get(name) if isinstance(name, str) else None
        if tool is None:
            offered = ", ".join(t.name for t in self.tools)
            raise ToolCallInvalid(
                f"the model called {name!r}, which is not a tool here ({offered})", text
            )
        if self.forced is not None and name != self.forced:
            raise ToolCallInvalid(
                f"the model called {name!r}, not the required {self.forced!r}", text
            )
        return ToolCall(id or call_id(), name, tool.check(arguments, text))

    def _call_schemas(self, argument_key: str) -> list[dict[str, Any]]:
        """One closed JSON schema per allowed tool: ``{"name": ..., argument_key: {...}}``."""
        return [
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, argument_key: tool.parameters},
                "required": ["name", argument_key],
                "additionalProperties": False,
            }
            for tool in self.tools
            if self.forced in (None, tool.name)
        ]

    def call_grammar(self, argument_key: str = "arguments") -> ResponseFormat:
        """A grammar that admits exactly one well-formed call of an allowed tool: the JSON
        ``{"name": ..., argument_key: {...}}`` with arguments that fit the tool's schema.

        No family marker (``<tool_call>``) is forced: tokenizers disagree on whether such a
        marker is a special token (llguidance's llama.cpp vocabulary calls Qwen's one
        special and then refuses it), while the bare JSON call reads the same everywhere.
        """
        from .structured import parse_response_format

        spaced = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        rules = [
            f"call{index}: %json {json.dumps({**schema, 'x-guidance': spaced})}"
            for index, schema in enumerate(self._call_schemas(argument_key))
        ]
        head = "start: " + " | ".join(f"call{i}" for i in range(len(rules)))
        response_format = parse_response_format(
            {"type": "grammar", "lark": "\n".join([head, *rules])}
        )
        assert response_format is not None
        return response_format

    def call_schema(self, argument_key: str = "arguments") -> ResponseFormat:
        """The calls :meth:`call_grammar` admits as one JSON schema (``anyOf`` the tools),
        for an engine that applies JSON schemas but no grammar (OpenVINO)."""
        from .structured import parse_response_format

        schemas = self._call_schemas(argument_key)
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        response_format = parse_response_format(
            {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema}}
        )
        assert response_format is not None
        return response_format

    def run(self, call: ToolCall) -> str:
        """Run a function tool on the call; its exception comes back as the result text."""
        tool, arguments = self._prepared(call)
        try:
            result = tool(**arguments)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
        except Exception as exc:
            return _failure(exc)
        return _as_text(result)

    async def arun(self, call: ToolCall) -> str:
        """Async twin of :meth:`run`: a coroutine function is awaited, a plain one runs in a
        worker thread."""
        tool, arguments = self._prepared(call)
        try:
            if inspect.iscoroutinefunction(tool):
                result = await tool(**arguments)
            else:
                result = await asyncio.to_thread(tool, **arguments)
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:
            return _failure(exc)
        return _as_text(result)

    def _prepared(self, call: ToolCall) -> tuple[Callable[..., Any], dict[str, Any]]:
        tool = self.get(call.name)
        assert tool is not None and tool.function is not None  # checked up front
        if tool.arguments_model is None:
            return tool.function, dict(call.arguments)
        parsed = tool.arguments_model.model_validate(call.arguments)
        return tool.function, {name: getattr(parsed, name) for name in type(parsed).model_fields}


async def _awaited(value: Any) -> Any:
    return await value


def arguments_object(name: str, arguments: Any, text: str) -> dict[str, Any]:
    """A call's arguments as a dict (given as one, or as JSON text); ToolCallInvalid if
    they are not a JSON object."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolCallInvalid(
                f"the call of {name!r} has arguments that are not JSON: {exc}", text
            ) from None
    if not isinstance(arguments, dict):
        raise ToolCallInvalid(f"the call of {name!r} has arguments that are not an object", text)
    return arguments


def parse_tools(tools: Any, tool_choice: Any) -> ToolSet | None:
    """Normalise ``tools=`` and ``tool_choice=``; raise before any generation."""
    if isinstance(tools, ToolSet):
        return tools
    if tools is None:
        if tool_choice not in (None, "none", "auto"):
            raise InvalidRequest(
                f"tool_choice={tool_choice!r} needs tools=[...]", field="tool_choice"
            )
        return None
    if not isinstance(tools, Sequence) or isinstance(tools, (str, bytes)) or not tools:
        raise InvalidRequest(
            "tools must be a non-empty list of Python functions or OpenAI function dicts",
            field="tools",
        )
    parsed: list[Tool] = []
    for index, item in enumerate(tools):
        if isinstance(item, Tool):
            parsed.append(item)
        elif isinstance(item, Mapping):
            parsed.append(Tool.from_openai(item, f"tools[{index}]"))
        elif callable(item):
            parsed.append(Tool.from_function(item))
        else:
            raise InvalidRequest(
                f"tools[{index}] is a {type(item).__name__}; pass a function or an OpenAI "
                "function dict",
                field="tools",
            )
    names = [t.name for t in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidRequest(f"tools holds two tools named {repeated[0]!r}", field="tools")
    choice, forced = _choice(tool_choice, names)
    return ToolSet(tuple(parsed), choice, forced)


def _choice(value: Any, names: list[str]) -> tuple[str, str | None]:
    if value is None:
        return "auto", None
    if isinstance(value, str):
        if value not in _CHOICES:
            raise InvalidRequest(
                f"tool_choice={value!r} is not understood: {_CHOICE_FIX}", "tool_choice"
            )
        return value, None
    function = value.get("function") if isinstance(value, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or value.get("type") != "function":
        raise InvalidRequest(
            f"tool_choice={value!r:.80} is not understood: {_CHOICE_FIX}", "tool_choice"
        )
    if name not in names:
        raise InvalidRequest(
            f"tool_choice names {name!r}, which is not among the tools ({', '.join(names)})",
            field="tool_choice",
        )
    return "required", name


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or _NAME.match(name) is None:
        raise InvalidRequest(
            f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (OpenAI's rule)",
            field="tools",
        )
    return name


_SPHINX_PARAM = re.compile(r"^:param\s+(?:\w+\s+)?(\w+):\s*(.+)$")
_GOOGLE_PARAM = re.compile(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _parameter_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from ``:param x: ...`` lines or a Google ``Args:`` section."""
    found: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        sphinx = _SPHINX_PARAM.match(line.strip())
        if sphinx:
            found[sphinx.group(1)] = sphinx.group(2).strip()
            continue
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        google = _GOOGLE_PARAM.match(line) if in_args else None
        if google:
            found[google.group(1)] = google.group(2).strip()
        elif in_args and line.strip() and not line.startswith((" ", "\t")):
            in_args = False
    return found


def _without_titles(schema: Any) -> Any:
    """pydantic's schema without its ``title`` keys: noise in a small model's prompt."""
    if isinstance(schema, dict):
        return {
            k: _without_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_without_titles(v) for v in schema]
    return schema


def _check_schema(name: str, schema: dict[str, Any], value: Any, text: str) -> None:
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        raise UnsupportedFeature(
            "checking tool calls against a JSON schema needs jsonschema: "
            'pip install "slmkit[structured]" (or pass Python functions: pydantic checks them)'
        ) from None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise ToolCallInvalid(
            f"the call of {name!r} breaks its schema at {where}: {error.message}", text
        )


def _failure(exc: Exception) -> str:
    return f"error: {type(exc).__name__}: {exc}"


def _as_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)
