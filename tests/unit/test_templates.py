from __future__ import annotations

import pytest

from slmkit.errors import ChatTemplateError, InvalidModelFile, InvalidRequest
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


# -- limits: an untrusted template cannot hang, exhaust memory, or escape untyped --------

HOSTILE = {
    "nested-range-loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
    "{% endfor %}{% endfor %}",
    "range-kept-in-a-variable": "{% set r = range(100000) %}{% for a in r %}{% for b in r %}"
    "x{% endfor %}{% endfor %}",
    "string-times-a-billion": "{{ 'a' * 10**9 }}",
    "list-times-a-billion": "{{ [1] * 1000000000 }}",
    "huge-power": "{% set n = 100000000 %}{{ 2 ** n }}",
    "doubling-in-a-namespace": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "doubling-in-a-macro": "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}"
    "{% endmacro %}{{ d('ab', 64) }}",
    "wide-format": "{{ '%1000000000s' % 'a' }}",
    "wide-center-filter": "{{ 'a' | center(1000000000) }}",
    "wide-str-method": "{{ 'a'.ljust(1000000000) }}",
    "huge-range": "{{ range(10**12) | list }}",
    "endless-output": "{% for a in range(100000) %}{% for b in range(100000) %}"
    "{{ 'aaaaaaaaaa' }}{% endfor %}{% endfor %}",
    "type-error": "{{ messages + 1 }}",
    "zero-division": "{{ 1 / 0 }}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "undefined-call": "{{ nothing_here() }}",
    "deeply-nested": "{% if true %}" * 2000 + "x" + "{% endif %}" * 2000,
    "huge-source": "{# padding #}" * 100_000,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_template_is_stopped_with_one_typed_error(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from slmkit import templates

    monkeypatch.setattr(templates, "RENDER_SECONDS", 0.5)
    start = time.monotonic()
    with pytest.raises(ChatTemplateError, match="chat template") as caught:
        render_chat(HOSTILE[case], MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - start < 5
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_the_error_names_the_template_and_where_it_came_from() -> None:
    with pytest.raises(ChatTemplateError) as caught:
        render_chat("{# mine #}{{ 1 / 0 }}", MESSAGES, origin="chat_template=...")  # type: ignore[arg-type]
    assert "chat_template=..." in str(caught.value)
    assert "{# mine #}" in str(caught.value)
    assert "ZeroDivisionError" in str(caught.value)


def test_long_conversations_still_render_within_the_limits() -> None:
    template = "{% for m in messages %}[{{ m.role }}]{{ m.content | trim }}{% endfor %}"
    messages = [{"role": "user", "content": "word " * 200_000}] * 5
    assert len(render_chat(template, messages)) > 5_000_000  # type: ignore[arg-type]


def test_ordinary_template_features_still_work() -> None:
    template = (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
        "{{ m.content | upper }}{{ '-' * 3 }}{% endfor %}{{ ns.n }}"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %}{{ '%s!' % 'ok' }}"
    )
    assert render_chat(template, MESSAGES) == "HI---1123ok!"  # type: ignore[arg-type]
