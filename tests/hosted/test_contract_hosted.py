"""The contract suite's chat-level part, run on every hosted backend against the local
llama-cpp-python server. The tests are the contract's own functions, imported unchanged;
only the fixtures (``backend``, ``chat_llm``) are provided here.

Base-model tests (generate/stream on gemma-3-270m, context-length refusal, count_tokens)
do not apply: a hosted endpoint serves one chat model and counts tokens server-side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import slmkit
from slmkit._llm import LLM
from tests.contract import test_contract as contract

from .conftest import HOSTED_BACKENDS, backend_options

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=HOSTED_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def chat_llm(backend: str, llama_server: str) -> Iterator[LLM]:
    options: dict[str, Any] = {"extra_body": {"repeat_penalty": 1.0}, "timeout": 120}
    llm = slmkit.load(
        contract_model(), backend=backend, **backend_options(backend, llama_server, **options)
    )
    yield llm
    llm.close()


def contract_model() -> str:
    """The contract's chat model as the server knows it (any name is accepted there)."""
    return "qwen-local"


test_chat_model_answers_the_capital_question = contract.test_chat_model_answers_the_capital_question
test_chat_stream_equals_chat = contract.test_chat_stream_equals_chat
test_async_chat = contract.test_async_chat
test_bad_messages_raise_invalid_request = contract.test_bad_messages_raise_invalid_request
test_non_ascii_output_is_valid_text = contract.test_non_ascii_output_is_valid_text


def test_usage_is_unknown_over_a_server_that_sends_none(chat_llm: LLM) -> None:
    """llama-cpp-python's server ignores stream_options.include_usage: its stream carries
    no usage, so slmkit reports None rather than invented counts (test_faults checks a
    server that does send usage)."""
    assert chat_llm.chat("Say hi", max_tokens=4).usage is None
