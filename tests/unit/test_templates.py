from __future__ import annotations

import pytest

from slmkit.errors import InvalidModelFile, InvalidRequest
from slmkit.templates import render_chat

MESSAGES = [{"role": "user", "content": "hi"}]


def test_renders_messages_and_generation_prompt() -> None:
    template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    assert render_chat(template, MESSAGES) == "[user]hi[assistant]"  # type: ignore[arg-type]


def test_template_cannot_reach_python_internals() -> None:
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidModelFile, match="unsafe"):
        render_chat(evil, MESSAGES)  # type: ignore[arg-type]


def test_template_cannot_mutate_the_messages() -> None:
    evil = "{{ messages.append({'role': 'system', 'content': 'pwned'}) }}"
    messages = list(MESSAGES)
    with pytest.raises(InvalidModelFile):
        render_chat(evil, messages)  # type: ignore[arg-type]
    assert messages == MESSAGES


def test_raise_exception_in_template_becomes_invalid_request() -> None:
    template = "{% if messages[0].role == 'user' %}{{ raise_exception('System role not supported') }}{% endif %}"
    with pytest.raises(InvalidRequest, match="System role not supported"):
        render_chat(template, MESSAGES)  # type: ignore[arg-type]


def test_broken_template_is_reported_as_a_model_file_problem() -> None:
    with pytest.raises(InvalidModelFile, match="chat template is broken"):
        render_chat("{% for m in messages %}", MESSAGES)  # type: ignore[arg-type]
