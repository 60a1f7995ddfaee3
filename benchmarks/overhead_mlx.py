"""Decode speed through slmkit vs mlx-lm's own ``stream_generate``, alternating in one run.

Both paths drive the same loaded model on the same prompt token ids with greedy
decoding, so the difference is slmkit's overhead (its generation loop, detokenizer
and stop-sequence matching). Figures: load time, TTFT, decode tok/s, peak RSS.

    python benchmarks/overhead_mlx.py                          # gemma-3-270m, 4-bit artifact
    python benchmarks/overhead_mlx.py --model qwen2.5-coder-0.5b-instruct --rounds 3
    python benchmarks/overhead_mlx.py --model ~/.cache/slmkit/converted/gemma-3-270m/hf

Decode tok/s = (tokens - 1) / (time of last token - time of first token) on both paths,
the definition slmkit's Timings use. The model is converted first when it is an alias.

"work per token" is how long each path keeps a token before asking mlx-lm's
``generate_step`` for the next one (detokenizing, stop matching, chunk objects): the
only place the two paths differ. generate_step has already queued the next token's
computation when it yields, so work shorter than a decode step costs no throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Clock:
    """Wall and process-CPU time of the first and the last token of one generation.

    CPU time counts only while this process runs, so it is steadier than wall time on
    a shared machine; both paths are timed the same way, from outside.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0
        self.ticks = 0

    def tick(self) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.ticks == 0:
            self.first, self.cpu_first = now, cpu
        self.last, self.cpu_last = now, cpu
        self.ticks += 1

    def figures(self, tokens: int) -> dict[str, float]:
        steps = max(tokens - 1, 1)
        return {
            "ttft_s": self.first - self.start,
            "decode_tok_s": steps / (self.last - self.first) if self.last > self.first else 0.0,
            "cpu_ms_per_token": 1000 * (self.cpu_last - self.cpu_first) / steps,
            "tokens": tokens,
        }


class Holds:
    """Per token: the time from generate_step yielding it to being asked for the next."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def wrap(self, steps: Iterator[Any]) -> Iterator[Any]:
        try:
            for item in steps:
                handed = time.perf_counter()
                yield item
                self.seconds.append(time.perf_counter() - handed)
        finally:
            close = getattr(steps, "close", None)
            if close is not None:
                close()


@contextlib.contextmanager
def holding(holds: Holds) -> Iterator[None]:
    """Route mlx-lm's generate_step (used by both paths) through ``holds``."""
    # mlx_lm's package namespace exports a function named "generate": take the module.
    generate = importlib.import_module("mlx_lm.generate")
    original = generate.generate_step
    generate.generate_step = lambda *a, **k: holds.wrap(original(*a, **k))
    try:
        yield
    finally:
        generate.generate_step = original


def through_slmkit(llm: Any, max_tokens: int, holds: Holds) -> dict[str, float]:
    clock = Clock()
    tokens = 0
    with holding(holds):
        for chunk in llm.stream_generate(PROMPT, max_tokens=max_tokens, temperature=0):
            clock.tick()
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    return clock.figures(tokens)


def through_mlx_lm(
    model: Any, tokenizer: Any, prompt_ids: list[int], max_tokens: int, holds: Holds
) -> dict[str, float]:
    import mlx.core as mx
    from mlx_lm import stream_generate

    clock = Clock()
    tokens = 0
    with holding(holds):
        for response in stream_generate(
            model, tokenizer, mx.array(prompt_ids), max_tokens=max_tokens
        ):
            clock.tick()
            tokens = response.generation_tokens
    return clock.figures(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m", help="alias or model folder")
    parser.add_argument(
        "--bits",
        type=int,
        choices=(4, 8, 16),
        default=None,
        help="for an alias: convert to and load this MLX variant (default 4)",
    )
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per path, alternating")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    import slmkit
    from slmkit.catalog import lookup
    from slmkit.convert import convert

    options: dict[str, Any] = {}
    if lookup(args.model) is not None:
        convert_options = {"bits": args.bits} if args.bits else {}
        convert(args.model, to="mlx", **convert_options)
        options = {"bits": args.bits or 4}

    # Imports first, so neither load below pays for them; the second load finds the
    # files in the page cache, so mlx-lm (loaded second) has a small edge there.
    start = time.perf_counter()
    from mlx_lm import load

    import_s = time.perf_counter() - start

    start = time.perf_counter()
    llm = slmkit.load(args.model, backend="mlx", **options)
    slmkit_load_s = time.perf_counter() - start
    rss_after_load = peak_rss_mb()

    start = time.perf_counter()
    model, tokenizer = load(llm.info.artifact)[:2]
    mlx_lm_load_s = time.perf_counter() - start

    engine = llm._engine
    prompt_ids = engine.tokenize(PROMPT, add_special=True)
    # Warm-up, both paths, not measured.
    through_slmkit(llm, 4, Holds())
    through_mlx_lm(model, tokenizer, prompt_ids, 4, Holds())
    holds = {"slmkit": Holds(), "mlx_lm": Holds()}

    runs: dict[str, list[dict[str, float]]] = {"slmkit": [], "mlx_lm": []}
    for i in range(args.rounds):
        order = ("slmkit", "mlx_lm") if i % 2 == 0 else ("mlx_lm", "slmkit")
        for path in order:
            if path == "slmkit":
                runs[path].append(through_slmkit(llm, args.tokens, holds[path]))
            else:
                runs[path].append(
                    through_mlx_lm(model, tokenizer, prompt_ids, args.tokens, holds[path])
                )

    def median(path: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[path])

    figures = {
        "model": args.model,
        "artifact": llm.info.artifact,
        "device": llm.info.device,
        "platform": f"{platform.system()} {platform.machine()}",
        "prompt_tokens": len(prompt_ids),
        "max_tokens": args.tokens,
        "runs": args.rounds,
        "import_mlx_lm_s": round(import_s, 2),
        "load_s": {"slmkit": round(slmkit_load_s, 2), "mlx_lm": round(mlx_lm_load_s, 2)},
        "ttft_s": {p: round(median(p, "ttft_s"), 3) for p in runs},
        "decode_tok_s": {p: round(median(p, "decode_tok_s"), 2) for p in runs},
        "cpu_ms_per_token": {p: round(median(p, "cpu_ms_per_token"), 1) for p in runs},
        "work_per_token_us": {
            p: round(1e6 * statistics.median(h.seconds), 1) for p, h in holds.items()
        },
        "decode_tok_s_all": {p: [round(r["decode_tok_s"], 2) for r in runs[p]] for p in runs},
        "tokens": {p: [int(r["tokens"]) for r in runs[p]] for p in runs},
        "peak_rss_mb": {"after_slmkit_load": round(rss_after_load), "end": round(peak_rss_mb())},
    }
    ratio = figures["decode_tok_s"]["slmkit"] / max(figures["decode_tok_s"]["mlx_lm"], 1e-9)
    cpu_ratio = figures["cpu_ms_per_token"]["slmkit"] / max(
        figures["cpu_ms_per_token"]["mlx_lm"], 1e-9
    )
    figures["slmkit_vs_mlx_lm"] = round(ratio, 4)
    figures["cpu_per_token_slmkit_vs_mlx_lm"] = round(cpu_ratio, 4)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{args.model} on MLX ({figures['device']}, {figures['platform']}), "
        f"artifact {Path(llm.info.artifact).name}, {args.tokens} new tokens, "
        f"median of {args.rounds} alternating runs"
    )
    print(f"{'':10}{'load s':>8}{'TTFT s':>9}{'decode tok/s':>14}{'CPU ms/token':>14}")
    for p in ("slmkit", "mlx_lm"):
        print(
            f"{p:10}{figures['load_s'][p]:>8}{figures['ttft_s'][p]:>9}"
            f"{figures['decode_tok_s'][p]:>14}{figures['cpu_ms_per_token'][p]:>14}"
        )
    print(f"slmkit / mlx-lm decode tok/s: {ratio:.3f}   per run: {figures['decode_tok_s_all']}")
    print(f"slmkit / mlx-lm CPU per token: {cpu_ratio:.3f}")
    work = figures["work_per_token_us"]
    print(f"work per token (median): slmkit {work['slmkit']} us, mlx-lm {work['mlx_lm']} us")
    print(
        f"peak RSS: {figures['peak_rss_mb']['after_slmkit_load']} MB after slmkit load, "
        f"{figures['peak_rss_mb']['end']} MB at the end (both copies loaded)"
    )
    llm.close()


if __name__ == "__main__":
    main()
