"""embed() on every runtime that runs an encoder, held to the transformers reference."""

from __future__ import annotations

import asyncio
import math

import pytest

from slmkit import errors
from slmkit._llm import LLM

from .conftest import Reference

#: Varied lengths, more than one batch (32), so batching and input order are exercised.
TEXTS = [
    f"sentence number {i} is about {topic}" + " and more detail" * (i % 7)
    for i, topic in enumerate(
        ["cats", "the weather", "stock prices", "football", "cooking pasta", "quantum physics"] * 7
    )
]
LONG = "embedding models read a limited number of tokens at once. " * 40


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_vectors_agree_with_the_reference_in_input_order(
    case: tuple[LLM, float], reference: Reference
) -> None:
    llm, floor = case
    result = llm.embed(TEXTS)
    expected = reference.embed(TEXTS)
    assert len(result.vectors) == len(TEXTS)
    worst = min(_cosine(a, b) for a, b in zip(result.vectors, expected, strict=True))
    assert worst >= floor, f"{llm.info.backend}: lowest cosine {worst:.5f}"


def test_dimensions_usage_and_unit_length(case: tuple[LLM, float], reference: Reference) -> None:
    llm, _ = case
    result = llm.embed(["eating food", "a second, longer input"])
    assert result.dimensions == 384 == len(result.vectors[1])
    assert result.usage.prompt_tokens == reference.token_count(
        ["eating food", "a second, longer input"]
    )
    assert result.usage.completion_tokens == 0
    assert (result.model, result.backend) == ("all-minilm-l6-v2", llm.info.backend)
    assert all(abs(math.hypot(*v) - 1) < 1e-3 for v in result.vectors)


def test_related_sentences_are_closer_than_unrelated_ones(case: tuple[LLM, float]) -> None:
    food, bread, market = (
        case[0].embed(["eating food", "eating bread", "the stock market crashed"]).vectors
    )
    assert _cosine(food, bread) > _cosine(food, market) + 0.2


def test_an_input_over_the_limit_is_an_error_naming_truncate(case: tuple[LLM, float]) -> None:
    with pytest.raises(errors.ContextLengthExceeded, match="truncate=True") as caught:
        case[0].embed(["short", LONG])
    assert caught.value.context_length == 256 < caught.value.prompt_tokens


def test_truncate_embeds_the_first_tokens(case: tuple[LLM, float], reference: Reference) -> None:
    llm, floor = case
    result = llm.embed([LONG, "short"], truncate=True)
    assert result.usage.prompt_tokens == 256 + 3
    assert _cosine(result.vectors[0], reference.embed([LONG])[0]) >= floor


def test_aembed_matches_embed(case: tuple[LLM, float]) -> None:
    llm, _ = case
    result = asyncio.run(llm.aembed("eating food"))
    assert _cosine(result.vectors[0], llm.embed("eating food").vectors[0]) > 0.99999


def test_chat_on_the_embedding_model_points_to_embed(case: tuple[LLM, float]) -> None:
    with pytest.raises(errors.NotAGenerativeModel, match=r"embed\(texts\)"):
        case[0].chat("hello")
