from __future__ import annotations

import pytest

from slmkit._llm import LLM
from slmkit.params import GenerationParams
from slmkit.types import ModelInfo

from .scripted_engine import ScriptedEngine


def make_llm(
    engine: ScriptedEngine | None = None, *, is_chat: bool = True, **defaults: object
) -> LLM:
    engine = engine or ScriptedEngine()
    info = ModelInfo(
        backend="scripted",
        model="scripted-model",
        artifact=engine.artifact,
        device="cpu",
        context_length=engine.context_length,
        is_chat=is_chat,
    )
    return LLM(engine, info, GenerationParams(**defaults), engine.chat_template)  # type: ignore[arg-type]


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def llm(engine: ScriptedEngine) -> LLM:
    return make_llm(engine)
