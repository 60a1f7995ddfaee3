"""slmkit vs llama-cpp-python called directly: same Llama object, same prompt, alternating.

    python benchmarks/overhead_llamacpp.py [--model gemma-3-270m] [--tokens 128] [--rounds 7]

Both sides stop at the same end-of-generation tokens and detokenize every token,
so the difference is slmkit's own per-token work (stop matching, UTF-8 safety,
chunk objects, locking). Figures follow docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
from time import perf_counter

import slmkit

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def direct(engine, prompt_ids: list[int], n: int) -> tuple[float, float]:
    """TTFT and decode tok/s calling llama-cpp-python the way its docs show."""
    llama = engine._llama
    start = perf_counter()
    llama.reset()
    first = last = start
    count = 0
    for token in llama.generate(
        prompt_ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0
    ):
        now = perf_counter()
        if count == 0:
            first = now
        if token in engine.eos_token_ids:
            break
        llama.detokenize([token])
        count += 1
        last = now
        if count >= n:
            break
    return first - start, (count - 1) / (last - first)


def through_slmkit(llm, n: int) -> tuple[float, float]:
    *_, final = llm.stream_generate(PROMPT, max_tokens=n)
    return final.timings.ttft_s, final.timings.decode_tokens_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    llm = slmkit.load(args.model, backend="llamacpp")
    engine = llm._engine
    prompt_ids = engine.tokenize(PROMPT, add_special=True)
    through_slmkit(llm, 8)  # warm-up
    direct(engine, prompt_ids, 8)
    results: dict[str, list[tuple[float, float]]] = {"direct": [], "slmkit": []}
    for _ in range(args.rounds):
        results["direct"].append(direct(engine, prompt_ids, args.tokens))
        results["slmkit"].append(through_slmkit(llm, args.tokens))
    medians = {
        name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for name, runs in results.items()
    }
    for name, (ttft, rate) in medians.items():
        print(f"{name:7s} TTFT {ttft * 1000:7.1f} ms   decode {rate:6.1f} tok/s")
    ratio = medians["slmkit"][1] / medians["direct"][1]
    delta_ms = (medians["slmkit"][0] - medians["direct"][0]) * 1000
    print(f"slmkit/direct decode ratio {ratio:.3f}; TTFT difference {delta_ms:+.1f} ms")


if __name__ == "__main__":
    main()
