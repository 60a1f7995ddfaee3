"""backend="transformers": slmkit's overhead over model.generate, and agreement with llama.cpp.

1. Decode tokens/s through slmkit (LLM.generate, greedy) against ``model.generate`` on the
   very same loaded model, alternating run by run so machine noise hits both alike.
   Decode rate has one definition for both: (tokens - 1) / (time of last - time of first).
2. Greedy token ids through transformers and through llama.cpp (same GGUF weights,
   dequantized to fp32 for transformers) for 3 fixed prompts: matching leading tokens
   out of the first 16.

    python benchmarks/overhead_transformers.py [--model gemma-3-270m] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import slmkit
from slmkit.params import GenerationParams

PROMPTS = (
    "Question: What is the capital of France?\nAnswer:",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a small village by the sea, there lived",
)
OPEN_PROMPT = "Write a long story about a lighthouse keeper and the sea. Once upon a time,"


class _Clock:
    """A transformers streamer that notes when each generated token arrives."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first put() is the prompt
            self._prompt_seen = True
            return
        self.stamps.append(time.perf_counter())

    def end(self) -> None:
        pass


def direct_rate(engine: Any, prompt_ids: list[int], new_tokens: int) -> float:
    import torch

    clock = _Clock()
    ids = torch.tensor([prompt_ids], device=engine._torch_device)
    with torch.inference_mode():
        engine._model.generate(
            ids,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            streamer=clock,
        )
    n = len(clock.stamps)
    return (n - 1) / (clock.stamps[-1] - clock.stamps[0])


def slmkit_rate(llm: Any, prompt: str, new_tokens: int) -> float:
    result = llm.generate(prompt, max_tokens=new_tokens, temperature=0)
    if result.usage.completion_tokens < new_tokens:
        print(f"  (slmkit stopped at EOS after {result.usage.completion_tokens} tokens)")
    return float(result.timings.decode_tokens_per_s)


def _timed(run: Any) -> tuple[float, float]:
    """(decode tok/s, CPU seconds of this process) for one run."""
    cpu = time.process_time()
    rate = run()
    return rate, time.process_time() - cpu


def overhead(model: str, rounds: int, new_tokens: int, threads: int | None) -> None:
    options = {"n_threads": threads} if threads else {}
    llm = slmkit.load(model, backend="transformers", **options)
    engine = llm._engine
    prompt_ids = engine.tokenize(OPEN_PROMPT, add_special=True)
    slmkit_rate(llm, OPEN_PROMPT, 4)  # warm-up both paths
    direct_rate(engine, prompt_ids, 4)
    runs: dict[str, Any] = {
        "slmkit": lambda: slmkit_rate(llm, OPEN_PROMPT, new_tokens),
        "direct": lambda: direct_rate(engine, prompt_ids, new_tokens),
    }
    rates: dict[str, list[float]] = {"slmkit": [], "direct": []}
    cpu: dict[str, list[float]] = {"slmkit": [], "direct": []}
    for i in range(rounds):
        order = ["slmkit", "direct"] if i % 2 == 0 else ["direct", "slmkit"]
        for name in order:
            rate, seconds = _timed(runs[name])
            rates[name].append(rate)
            cpu[name].append(seconds)
        print(
            f"  round {i + 1}: slmkit {rates['slmkit'][-1]:.2f} tok/s "
            f"({cpu['slmkit'][-1]:.1f} CPU s), model.generate {rates['direct'][-1]:.2f} "
            f"({cpu['direct'][-1]:.1f} CPU s)"
        )
    a, b = statistics.median(rates["slmkit"]), statistics.median(rates["direct"])
    ca, cb = statistics.median(cpu["slmkit"]), statistics.median(cpu["direct"])
    print(
        f"{model}: decode tok/s median slmkit {a:.2f} vs model.generate {b:.2f} "
        f"-> ratio {a / b:.3f}; CPU s per run {ca:.2f} vs {cb:.2f} -> ratio {ca / cb:.3f} "
        f"({rounds} rounds x {new_tokens} tokens, {engine.dtype}, {engine.device}, "
        f"{torch_threads()} threads)"
    )
    llm.close()


def agreement(model: str, compare: int = 16) -> None:
    greedy = GenerationParams(temperature=0)
    with (
        slmkit.load(model, backend="transformers") as tf,
        slmkit.load(model, backend="llamacpp") as lc,
    ):
        total = total_positional = 0
        for prompt in PROMPTS:
            ids_tf = tf._engine.tokenize(prompt, add_special=True)
            ids_lc = lc._engine.tokenize(prompt, add_special=True)
            out = []
            for engine, ids in ((tf._engine, ids_tf), (lc._engine, ids_lc)):
                tokens = engine.generate_tokens(ids, greedy)
                out.append([next(tokens) for _ in range(compare)])
                tokens.close()
            pairs = list(zip(*out, strict=True))
            leading = next((i for i, (a, b) in enumerate(pairs) if a != b), compare)
            positional = sum(a == b for a, b in pairs)
            total += leading
            total_positional += positional
            print(
                f"  {prompt[:40]!r}: prompt ids equal={ids_tf == ids_lc}; of the first "
                f"{compare} greedy tokens {leading} agree before the first difference, "
                f"{positional} agree position by position"
            )
            if leading < compare:
                decode = tf._engine.decode
                print(f"    transformers: {decode(out[0])!r}\n    llama.cpp:    {decode(out[1])!r}")
        n = compare * len(PROMPTS)
        print(
            f"{model}: {total}/{n} tokens agree before the first difference, "
            f"{total_positional}/{n} position by position"
        )


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="alias (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    for model in args.model or ["gemma-3-270m", "qwen2.5-coder-0.5b-instruct"]:
        if not args.skip_agreement:
            agreement(model)
        if not args.skip_overhead:
            overhead(model, args.rounds, args.tokens, args.threads)


if __name__ == "__main__":
    main()
