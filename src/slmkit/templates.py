"""Chat templates, rendered only in jinja2's immutable sandbox.

A template that ships inside a model file is untrusted input: the sandbox blocks
attribute access to internals and mutation of the values passed in.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import InvalidModelFile, InvalidRequest

if TYPE_CHECKING:
    from jinja2 import Template

    from .types import Message

__all__ = ["render_chat"]


class TemplateRaised(Exception):
    """The template itself refused the conversation via raise_exception()."""


def _raise_exception(message: str) -> NoReturn:
    raise TemplateRaised(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(source: str) -> Template:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


def render_chat(
    source: str,
    messages: list[Message],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
    **variables: Any,
) -> str:
    """Render ``messages`` with the model's template, ready for the assistant's turn."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    try:
        template = _compile(source)
        return template.render(
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )
    except TemplateRaised as exc:
        raise InvalidRequest(
            f"the model's chat template refused the messages: {exc}", "messages"
        ) from None
    except SecurityError as exc:
        raise InvalidModelFile(
            f"the model's chat template tried an unsafe operation and was stopped ({exc}); "
            "pass a trusted template with chat_template=..."
        ) from None
    except TemplateError as exc:
        raise InvalidModelFile(
            f"the model's chat template is broken ({exc}); pass one with chat_template=..."
        ) from None
