"""Sentences per second for embed() on every runtime that embeds, in one run.

    python benchmarks/embeddings.py [--model all-minilm-l6-v2] [--sentences 1000] [--rounds 3]

Each case embeds the same short sentences (batches of 32, as slmkit does) after a
warm-up; the figure is the best of ``--rounds``. Its vectors are compared with the
transformers case (the checkpoint as shipped), so a fast but wrong runtime shows. The
last row is sentence-transformers itself, when it is installed. Needs the ONNX
exports: ``slmkit convert MODEL --to onnx``, ``... --precision int8`` and ``--to gguf``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from time import perf_counter
from typing import Any

import slmkit

CASES = [
    ("transformers", "transformers", {}),
    ("onnx fp32", "onnx", {}),
    ("onnx int8", "onnx", {"precision": "int8"}),
    ("openvino fp32", "openvino", {}),
    ("openvino int8", "openvino", {"weight_format": "int8"}),
    ("llamacpp fp32", "llamacpp", {}),
]
SUBJECTS = ["the cat", "our team", "a small bakery", "the city council", "my phone", "the river"]
VERBS = ["opened", "lost", "painted", "reviewed", "moved", "celebrated"]
OBJECTS = ["a new shop", "the old bridge", "its budget", "the garden", "every window", "a record"]


def sentences(n: int) -> list[str]:
    return [
        f"{SUBJECTS[i % 6]} {VERBS[(i // 6) % 6]} {OBJECTS[(i // 36) % 6]} on day {i}"
        for i in range(n)
    ]


def best_rate(embed: Any, texts: list[str], rounds: int) -> tuple[float, list[list[float]]]:
    embed(texts[:32])  # warm-up: first-inference set-up is not throughput
    best, vectors = 0.0, []
    for _ in range(rounds):
        start = perf_counter()
        vectors = embed(texts)
        best = max(best, len(texts) / (perf_counter() - start))
    return best, vectors


def worst_cosine(a: list[list[float]], b: list[list[float]]) -> float:
    def cos(x: list[float], y: list[float]) -> float:
        dot = sum(p * q for p, q in zip(x, y, strict=True))
        return dot / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))

    return min(cos(x, y) for x, y in zip(a, b, strict=True))


def sentence_transformers_case(folder: str) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device="cpu")
    return lambda texts: model.encode(texts, batch_size=32).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-minilm-l6-v2")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = sentences(args.sentences)
    print(f"{args.model}: {args.sentences} short sentences, best of {args.rounds}", flush=True)
    reference: list[list[float]] = []
    checkpoint = ""
    for label, backend, options in CASES:
        try:
            llm = slmkit.load(args.model, backend=backend, **options)
        except slmkit.SlmkitError as exc:
            print(f"  {label:<22} skipped: {type(exc).__name__}: {exc}", flush=True)
            continue
        with llm:
            rate, vectors = best_rate(lambda t, llm=llm: llm.embed(t).vectors, texts, args.rounds)
            if backend == "transformers":
                reference, checkpoint = vectors, llm.info.artifact
        report(label, rate, vectors, reference)
    if importlib.util.find_spec("sentence_transformers") is not None and checkpoint:
        rate, vectors = best_rate(sentence_transformers_case(checkpoint), texts, args.rounds)
        report("sentence-transformers", rate, vectors, reference)


def report(
    label: str, rate: float, vectors: list[list[float]], reference: list[list[float]]
) -> None:
    agreement = f"worst cosine {worst_cosine(vectors, reference):.5f}" if reference else ""
    print(f"  {label:<22} {rate:8.1f} sentences/s   {agreement}", flush=True)


if __name__ == "__main__":
    main()
