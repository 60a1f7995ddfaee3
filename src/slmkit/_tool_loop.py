"""run_tools=True: the rounds of calling Python-function tools and answering with results.

Each round is one ordinary chat() on the growing history: the model's call is appended
as its assistant turn, each result as a ``tool`` message. After ``max_tool_rounds``
rounds that called tools, or when the model repeats a call already answered or, after a
result, writes a call out as plain text (small 4-bit models do both), one last answer is
asked for without tools; where the engine can constrain it (a token mask, or a native
regex), that answer may not begin like a call (``{``, ``[``, ``<``, a fence), so it is words.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidRequest
from .tools import ToolSet, parse_tools
from .types import Completion, Message, ToolCall

__all__ = ["DEFAULT_ROUNDS", "ToolRounds"]

#: Rounds of tool calls one chat(run_tools=True) allows before it asks for an answer.
DEFAULT_ROUNDS = 4
#: The last answer's constraint: any text that does not open like a tool call. The class
#: lists ASCII whitespace only: xgrammar (OpenVINO) warns on a negated class beyond ASCII.
_WORDS = {"type": "regex", "pattern": r"[^{\[<` \t\n\r\f\v][\s\S]*"}
#: Where a call written out as plain JSON text may begin.
_CALL_OPENING = re.compile(r'\{\s*"name"\s*:')


class ToolRounds:
    """The state of one chat(run_tools=True): the history so far and the rounds left."""

    def __init__(self, messages: list[Message], params: dict[str, Any], constrains: bool) -> None:
        params = dict(params)
        params.pop("run_tools")
        rounds = params.pop("max_tool_rounds", DEFAULT_ROUNDS)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise InvalidRequest(
                f"max_tool_rounds={rounds!r}: pass an integer >= 1", "max_tool_rounds"
            )
        toolset = parse_tools(params.pop("tools", None), params.pop("tool_choice", None))
        if toolset is None:
            raise InvalidRequest("run_tools=True needs tools=[...] (Python functions)", "tools")
        schemas = [t.name for t in toolset.tools if t.function is None]
        if schemas:
            raise InvalidRequest(
                f"run_tools=True runs Python functions, and tool {schemas[0]!r} is a schema "
                "without one: pass the function itself, or run the calls yourself",
                field="tools",
            )
        self.toolset: ToolSet = toolset
        self.history: list[Message] = list(messages)
        self._params = params
        self._left = rounds
        self._first = True
        self._constrains = constrains
        self._answered: set[str] = set()

    def params(self) -> dict[str, Any]:
        """The next round's parameters: the caller's choice first (a forced call repeated
        would never end), then "auto", and no tools once the rounds are spent."""
        if self._left == 0:
            return {**self._params, **({"response_format": _WORDS} if self._constrains else {})}
        choice = self.toolset.openai_choice() if self._first else "auto"
        self._first = False
        return {**self._params, "tools": _with_choice(self.toolset, choice)}

    def after(self, result: Completion) -> list[ToolCall] | None:
        """Record the model's turn: the calls to run now, or None when ``result`` is the
        answer. Calls that only repeat answered ones end the rounds (their results are in
        the history already), as does a call written out as text after a result."""
        if not result.tool_calls:
            if self._left and self._answered and _writes_a_call(result.text, self.toolset):
                self._left = 0
                return []
            return None
        if self._left == 0:
            return None
        keys = [_key(call) for call in result.tool_calls]
        if all(key in self._answered for key in keys):
            self._left = 0
            return []
        self._answered.update(keys)
        self._left -= 1
        self.history.append(result.message)
        return list(result.tool_calls)

    def answer(self, call: ToolCall, result: str) -> None:
        """Append a tool's result; characters no model can receive (NUL, lone surrogates)
        are replaced rather than failing the whole call."""
        text = result.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
        self.history.append({"role": "tool", "tool_call_id": call.id, "content": text})


def _writes_a_call(text: str, toolset: ToolSet) -> bool:
    """Whether ``text`` holds a JSON call of an offered tool written as plain text, in no
    call format of the template (4-bit models write ``{"name": ...}`` lines, some after a
    stray ``>``, often until max_tokens cuts them off)."""
    decoder = json.JSONDecoder()
    for start in _CALL_OPENING.finditer(text):
        try:
            value, _ = decoder.raw_decode(text, start.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and toolset.get(str(value.get("name"))) is not None:
            return True
    return False


def _key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True)


def _with_choice(toolset: ToolSet, choice: Any) -> ToolSet:
    """The same tools under another tool_choice."""
    return parse_tools(list(toolset.tools), choice)  # type: ignore[return-value]
