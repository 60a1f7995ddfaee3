"""The contract suite: one behavioural spec, run on every installed local backend.

Backends under test: ``SLMKIT_CONTRACT_BACKENDS=llamacpp,onnx`` or, by default, every
registered local backend that is installed and usable here. Each runs the two real
offline models in its own format (converted first when the backend needs it):
``gemma-3-270m`` (base) for generate/stream and the default instruct model for chat.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import slmkit
from slmkit import registry
from slmkit._llm import LLM

BASE_MODEL = "gemma-3-270m"
CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"


def _local_backends() -> list[str]:
    wanted = os.environ.get("SLMKIT_CONTRACT_BACKENDS")
    if wanted:
        return [name.strip() for name in wanted.split(",") if name.strip()]
    names = []
    for status in registry.backend_statuses():
        if status.kind == "local" and status.usable:
            names.append(status.name)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = _local_backends()
        metafunc.parametrize(
            "backend",
            names
            or [
                pytest.param(
                    "none", marks=pytest.mark.skip(reason="no local backend extra installed")
                )
            ],
            scope="module",
        )


def _load(model: str, backend: str) -> LLM:
    cls = registry.get_backend(backend)
    if cls.artifact_format not in (None, "gguf"):
        slmkit.convert(model, to=cls.artifact_format)  # cached after the first run
    return slmkit.load(model, backend=backend)


@pytest.fixture(scope="module")
def base_llm(backend: str) -> Iterator[LLM]:
    llm = _load(BASE_MODEL, backend)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def chat_llm(backend: str) -> Iterator[LLM]:
    llm = _load(CHAT_MODEL, backend)
    yield llm
    llm.close()
