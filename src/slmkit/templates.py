"""Chat templates, rendered only in jinja2's immutable sandbox, with limits.

A template that ships inside a model file is untrusted input: the sandbox blocks
attribute access to internals and mutation of the values passed in, and the limits
here stop one that would run for ever or fill memory (nested loops over ``range``,
``'a' * 10**9``, a string doubled in a loop). Every failure inside a template is one
:class:`~slmkit.errors.ChatTemplateError` naming the template.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import ChatTemplateError, InvalidRequest

if TYPE_CHECKING:
    from jinja2 import Template

    from .types import Message

__all__ = ["MAX_RENDER_CHARS", "RENDER_SECONDS", "render_chat"]

#: A render may take this long; real templates need milliseconds.
RENDER_SECONDS = 5.0
#: No value made inside a template, nor its output beyond the messages it is given,
#: may be longer than this.
MAX_RENDER_CHARS = 1_000_000
#: The longest template source compiled: real chat templates are a few KB.
MAX_TEMPLATE_CHARS = 1_000_000
#: Items one ``range()`` may hold (jinja2's own sandbox limit).
MAX_RANGE = 100_000

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("slmkit_template_deadline")
_budget: contextvars.ContextVar[int] = contextvars.ContextVar("slmkit_template_budget")
_WIDE_FORMAT = re.compile(r"\d{7,}")


class TemplateRaised(Exception):
    """The template itself refused the conversation via raise_exception()."""


class TemplateLimit(Exception):
    """The template went past a time or size limit."""


def _raise_exception(message: str) -> NoReturn:
    raise TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tick() -> None:
    if time.monotonic() > _deadline.get(float("inf")):
        raise TemplateLimit(f"it ran longer than {RENDER_SECONDS:g} s")


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > _budget.get(MAX_RENDER_CHARS):
        raise TemplateLimit(f"it made a value of {len(value):,} items or characters")
    return value


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a call whose arguments already ask for too much (``center(10**9)``)."""
    _tick()
    for value in (*args, *kwargs.values()):
        huge = isinstance(value, int) and abs(value) > _budget.get(MAX_RENDER_CHARS)
        if huge and not isinstance(value, bool):
            raise TemplateLimit(f"a call with the argument {value:,}")
        _check_size(value)


def _size_of(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 1


class _Range:
    """``range()`` for templates: bounded, and every step checks the deadline."""

    def __init__(self, *args: int) -> None:
        self._range = range(*args)
        if len(self._range) > MAX_RANGE:
            raise TemplateLimit(f"range() of {len(self._range):,} items (at most {MAX_RANGE:,})")

    def __iter__(self) -> Iterator[int]:
        for value in self._range:
            _tick()
            yield value

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: int) -> int:
        return self._range[index]


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter or test that checks the deadline and the size of what it returns."""

    @functools.wraps(function)  # keeps jinja's pass_context/pass_environment marks
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        return _check_size(function(*args, **kwargs))

    return wrapper


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Namespace

    class GuardedNamespace(Namespace):
        def __setitem__(self, name: str, value: Any) -> None:
            _tick()
            super().__setitem__(name, _check_size(value))

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _check_arguments(args, kwargs)
            return _check_size(super().call(__context, __obj, *args, **kwargs))

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _tick()
            if operator == "**" and isinstance(right, int) and abs(right) > 1_000:
                raise TemplateLimit(f"a power of {right:,}")
            if operator == "*" and isinstance(left, int) != isinstance(right, int):
                count, sequence = (left, right) if isinstance(left, int) else (right, left)
                if _size_of(sequence) * max(count, 0) > _budget.get(MAX_RENDER_CHARS):
                    raise TemplateLimit(f"a value repeated {count:,} times")
            if operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
                raise TemplateLimit("a %-format with a huge width")
            return _check_size(super().call_binop(context, operator, left, right))

        def getattr(self, obj: Any, attribute: str) -> Any:
            _tick()
            return super().getattr(obj, attribute)

    env = LimitedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters = {name: _guarded(f) for name, f in env.filters.items()}
    env.tests = {name: _guarded(f) for name, f in env.tests.items()}  # type: ignore[arg-type]
    env.globals.update(
        range=_Range,
        namespace=GuardedNamespace,
        raise_exception=_raise_exception,
        strftime_now=_strftime_now,
    )
    return env


@lru_cache(maxsize=16)
def _compile(source: str) -> Template:
    return _environment().from_string(source)  # type: ignore[no-any-return]


def render_chat(
    source: str,
    messages: list[Message],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    origin: str = "the model's chat template",
    **variables: Any,
) -> str:
    """Render ``messages`` with the model's template, ready for the assistant's turn.

    ``origin`` names where the template came from, for error messages.
    """
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    given = sum(len(str(m.get("content", ""))) for m in messages)
    budget = MAX_RENDER_CHARS + 2 * given
    tokens = (_deadline.set(time.monotonic() + RENDER_SECONDS), _budget.set(budget))
    try:
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateLimit(f"it is {len(source):,} characters long (real ones take a few KB)")
        return _render(
            _compile(source),
            budget,
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )
    except TemplateRaised as exc:
        raise InvalidRequest(f"{origin} refused the messages: {exc}", "messages") from None
    except TemplateLimit as exc:
        problem = f"was stopped: {exc}; pass a trusted template with chat_template=..."
    except SecurityError as exc:
        problem = (
            f"tried an unsafe operation and was stopped ({exc}); "
            "pass a trusted template with chat_template=..."
        )
    except TemplateError as exc:
        problem = f"is broken ({_describe(exc)}); pass one with chat_template=..."
    except Exception as exc:  # TypeError, ZeroDivisionError, RecursionError, MemoryError...
        problem = f"failed while rendering ({_describe(exc)}); pass one with chat_template=..."
    finally:
        _deadline.reset(tokens[0])
        _budget.reset(tokens[1])
    raise ChatTemplateError(f"{origin} {problem} [the template begins {_excerpt(source)}]")


def _render(template: Template, budget: int, **variables: Any) -> str:
    """Stream the render, stopping once the output passes ``budget`` characters."""
    parts: list[str] = []
    written = 0
    for part in template.generate(**variables):
        written += len(part)
        if written > budget:
            raise TemplateLimit(f"its output passed {budget:,} characters")
        parts.append(part)
    return "".join(parts)


def _excerpt(source: str) -> str:
    """The template's first line, shortened: enough to tell which template failed."""
    first = source.strip().splitlines()[0] if source.strip() else ""
    return repr(first[:60] + ("..." if len(first) > 60 else ""))


def _describe(exc: BaseException) -> str:
    line = getattr(exc, "lineno", None)
    text = f"{type(exc).__name__}: {exc}"
    return f"{text} at line {line}" if line else text
