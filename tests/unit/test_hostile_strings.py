"""Every string input path applies one policy: refused with a typed error, or intact."""

from __future__ import annotations

import pytest

from slmkit import errors
from slmkit._llm import LLM
from slmkit._messages import MAX_TEXT_CHARS

from ..hostile_strings import INTACT, REFUSED
from .conftest import make_llm
from .scripted_engine import ScriptedEngine

pytestmark = pytest.mark.timeout(60)


def _paths(text: str) -> dict[str, tuple[str, object]]:
    """Each way text enters slmkit, and the field name the error must give."""
    return {
        "generate": ("prompt", lambda llm: llm.generate(text)),
        "stream_generate": ("prompt", lambda llm: llm.stream_generate(text)),
        "stream": ("messages", lambda llm: llm.stream(text)),
        "chat-string": ("messages", lambda llm: llm.chat(text)),
        "chat-user": (
            "messages[0].content",
            lambda llm: llm.chat([{"role": "user", "content": text}]),
        ),
        "chat-system": (
            "messages[0].content",
            lambda llm: llm.chat(
                [{"role": "system", "content": text}, {"role": "user", "content": "hi"}]
            ),
        ),
        "stop": ("stop[0]", lambda llm: llm.generate("hi", stop=[text])),
        "count_tokens": ("text", lambda llm: llm.count_tokens(text)),
    }


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("path", sorted(_paths("")))
def test_nul_and_lone_surrogates_are_refused_naming_field_and_position(
    case: str, path: str
) -> None:
    text, position = REFUSED[case]
    engine = ScriptedEngine()
    field, call = _paths(text)[path]
    with pytest.raises(errors.InvalidRequest, match=f"position {position}") as caught:
        call(make_llm(engine))  # type: ignore[operator]
    assert caught.value.field == field
    assert field in str(caught.value)
    assert engine.prompts == []  # refused before any work


@pytest.mark.parametrize("case", sorted(INTACT))
def test_other_text_reaches_the_engine_intact(case: str) -> None:
    text = INTACT[case]
    engine = ScriptedEngine()
    llm: LLM = make_llm(engine)
    llm.generate(text, max_tokens=1)
    raw = engine.decode(engine.prompts[-1])
    # A raw prompt is the whole prompt, markers included on purpose: they may be parsed.
    assert raw == text or "markers" in case
    llm.chat(text, max_tokens=1)
    assert f"<user>{text}</user>" in engine.decode(engine.prompts[-1])
    assert llm.count_tokens(text) == len(text.encode("utf-8"))


def test_a_stop_sequence_with_control_characters_is_kept() -> None:
    llm = make_llm(ScriptedEngine("ab\x07cd"))
    assert llm.generate("hi", stop=["\x07"]).text == "ab"


def test_text_longer_than_any_context_is_refused_before_tokenizing() -> None:
    engine = ScriptedEngine()
    with pytest.raises(errors.InvalidRequest, match="characters"):
        make_llm(engine).generate("a" * (MAX_TEXT_CHARS + 1))
    assert engine.prompts == []
