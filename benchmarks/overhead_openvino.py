"""slmkit vs openvino-genai's LLMPipeline called directly: same pipeline, same prompt, alternating.

    python benchmarks/overhead_openvino.py [--model gemma-3-270m] [--tokens 128] [--rounds 7]

The direct side is the leanest use of the runtime: ``LLMPipeline.generate`` on the prompt
ids with a ``StreamerBase`` that only timestamps each token id. slmkit adds its worker
thread hand-off, detokenizing, stop matching, chunk objects and locking. Both use the same
GenerationConfig (greedy, the same stop ids, max_new_tokens), so they produce the same
tokens. Figures follow docs/benchmarks.md; OpenVINO's own TPOT is shown next to them.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import threading
from time import perf_counter

import slmkit
from slmkit.params import GenerationParams

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def direct(engine, prompt_ids: list[int], n: int) -> tuple[float, float, int, float]:
    """TTFT, decode tok/s, tokens and OpenVINO's TPOT calling LLMPipeline.generate directly."""
    import numpy as np
    import openvino
    import openvino_genai

    stamps: list[float] = []

    class Stamp(openvino_genai.StreamerBase):
        def write(self, token):
            stamps.append(perf_counter())
            return openvino_genai.StreamingStatus.RUNNING

        def end(self):
            pass

    config = engine.generation_config(GenerationParams(max_tokens=n))
    start = perf_counter()
    ids = openvino.Tensor(np.array([prompt_ids], dtype=np.int64))
    result = engine._pipe.generate(ids, config, Stamp())
    ttft = stamps[0] - start
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return ttft, rate, len(stamps), result.perf_metrics.get_tpot().mean


def direct_in_thread(engine, prompt_ids: list[int], n: int) -> tuple[float, float, int, float]:
    """The same, called from a worker thread as slmkit does (isolates the thread's effect)."""
    out = []
    worker = threading.Thread(target=lambda: out.append(direct(engine, prompt_ids, n)))
    worker.start()
    worker.join()
    return out[0]


def through_slmkit(llm, n: int) -> tuple[float, float, int, float]:
    *_, final = llm.stream_generate(PROMPT, max_tokens=n)
    tpot = final.runtime["openvino"]["perf_metrics"]["tpot_ms"]
    timings = final.timings
    return timings.ttft_s, timings.decode_tokens_per_s, final.usage.completion_tokens, tpot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    options = {"device": args.device} if args.device else {}
    start = perf_counter()
    llm = slmkit.load(args.model, backend="openvino", **options)
    load_s = perf_counter() - start
    ov = llm.info.extra["openvino"]
    engine = llm._engine
    prompt_ids = engine.tokenize(PROMPT, add_special=True)
    first_call = through_slmkit(llm, 8)  # the backend warmed up at load; this shows it
    direct(engine, prompt_ids, 8)
    sides = {
        "direct": lambda: direct(engine, prompt_ids, args.tokens),
        "direct-thread": lambda: direct_in_thread(engine, prompt_ids, args.tokens),
        "slmkit": lambda: through_slmkit(llm, args.tokens),
    }
    results: dict[str, list[tuple[float, float, int, float]]] = {name: [] for name in sides}
    for round_ in range(args.rounds):  # alternate the order: no side always runs first
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            results[name].append(sides[name]())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"model {args.model} on {llm.info.device}, {len(prompt_ids)} prompt tokens, "
        f"{args.tokens} new tokens, {args.rounds} rounds (median)"
    )
    print(
        f"load: slmkit.load {load_s:.2f} s (LLMPipeline + warm-up {ov['load_time_s']:.2f} s); "
        f"first request TTFT {first_call[0] * 1000:.0f} ms"
    )
    medians = {}
    for name, runs in results.items():
        ttft = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        tokens = statistics.median(r[2] for r in runs)
        tpot = statistics.median(r[3] for r in runs)
        medians[name] = (ttft, rate)
        print(
            f"{name:13s} TTFT {ttft * 1000:7.1f} ms   decode {rate:6.1f} tok/s   tokens "
            f"{tokens:.0f}   OpenVINO's TPOT {tpot:.1f} ms ({1000 / tpot:.1f} tok/s)"
        )
    for base in ("direct", "direct-thread"):
        ratio = medians["slmkit"][1] / medians[base][1]
        delta_ms = (medians["slmkit"][0] - medians[base][0]) * 1000
        print(f"slmkit/{base} decode ratio {ratio:.3f}; TTFT difference {delta_ms:+.1f} ms")
    print(f"peak RSS {peak_mb:.0f} MB")
    llm.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
