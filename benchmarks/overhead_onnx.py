"""slmkit vs onnxruntime-genai called directly, and ONNX vs llama.cpp on the same model.

    python benchmarks/overhead_onnx.py [--model qwen2.5-coder-0.5b-instruct] [--tokens 128]
                                       [--rounds 7] [--no-compare]

1. Overhead: the og generator loop as its docs show it (append_tokens, generate_next_token,
   get_next_tokens, TokenizerStream.decode) and ``llm.stream()``, on the same og.Model, the
   same prompt ids and the same greedy search options, alternating (ABBA) in one run. The
   ratio is slmkit's own per-token cost (stop matching, chunks, locking).
2. Detokenizers: og's TokenizerStream vs the core's WindowDetokenizer, per token.
3. Compare (each in a fresh process, so peak RSS is its own): load time, TTFT, decode tok/s
   and peak RSS for backend onnx and backend llamacpp. Figures follow docs/benchmarks.md.

Needs the ONNX artifact: ``slmkit convert MODEL --to onnx``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
from time import perf_counter

import slmkit
from slmkit.textstream import WindowDetokenizer

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def direct(engine, prompt_ids: list[int], n: int) -> tuple[float, float]:
    """TTFT and decode tok/s from the og generator loop written by hand."""
    og, model = engine._og, engine._model
    start = perf_counter()
    params = og.GeneratorParams(model)
    # the search options slmkit sets (greedy; max_length = prompt + n, at least Gemma 3's
    # sliding window), so the two sides differ only in the loop around the generator
    options = engine.search_options(len(prompt_ids), slmkit.GenerationParams(max_tokens=n))
    params.set_search_options(**options)
    generator = og.Generator(model, params)
    stream = engine._tokenizer.create_stream()
    generator.append_tokens(prompt_ids)
    first = last = start
    count = 0
    while not generator.is_done():
        generator.generate_next_token()
        token = int(generator.get_next_tokens()[0])
        now = perf_counter()
        if count == 0:
            first = now
        if token in engine.eos_token_ids:
            break
        stream.decode(token)
        count += 1
        last = now
        if count >= n:
            break
    del generator
    return first - start, (count - 1) / (last - first)


def through_slmkit(llm, n: int) -> tuple[float, float]:
    *_, final = llm.stream_generate(PROMPT, max_tokens=n)
    return final.timings.ttft_s, final.timings.decode_tokens_per_s


def overhead(model: str, tokens: int, rounds: int) -> None:
    llm = slmkit.load(model, backend="onnx")
    engine = llm._engine
    prompt_ids = engine.tokenize(PROMPT, add_special=True)
    through_slmkit(llm, 8)  # warm-up
    direct(engine, prompt_ids, 8)
    results: dict[str, list[tuple[float, float]]] = {"direct": [], "slmkit": []}
    for i in range(rounds):  # ABBA order, so neither side always runs first
        if i % 2 == 0:
            results["direct"].append(direct(engine, prompt_ids, tokens))
            results["slmkit"].append(through_slmkit(llm, tokens))
        else:
            results["slmkit"].append(through_slmkit(llm, tokens))
            results["direct"].append(direct(engine, prompt_ids, tokens))
    medians = {
        name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for name, runs in results.items()
    }
    print(f"== overhead: {model}, {tokens} tokens, median of {rounds} alternating rounds")
    for name, (ttft, rate) in medians.items():
        print(f"{name:7s} TTFT {ttft * 1000:7.1f} ms   decode {rate:6.1f} tok/s")
    ratios = [s[1] / d[1] for d, s in zip(results["direct"], results["slmkit"], strict=True)]
    delta_ms = (medians["slmkit"][0] - medians["direct"][0]) * 1000
    print(
        f"slmkit/direct decode ratio {medians['slmkit'][1] / medians['direct'][1]:.3f} "
        f"(per-round ratios {min(ratios):.3f}..{max(ratios):.3f}); "
        f"TTFT difference {delta_ms:+.1f} ms"
    )
    ids = engine.tokenize(llm.generate(PROMPT, max_tokens=tokens).text, add_special=False)
    print(f"== detokenizers over {len(ids)} tokens")
    for name, make in (
        ("og TokenizerStream", engine.detokenizer),
        ("WindowDetokenizer", lambda: WindowDetokenizer(engine.decode)),
    ):
        per_token = []
        for _ in range(rounds):
            detokenizer = make()
            start = perf_counter()
            for token in ids:
                detokenizer.add(token)
            detokenizer.flush()
            per_token.append((perf_counter() - start) / len(ids))
        print(f"{name:18s} {statistics.median(per_token) * 1e6:6.1f} us/token")
    llm.close()


def measure_one(backend: str, model: str, tokens: int) -> dict[str, float]:
    """Load time, TTFT, decode tok/s (median of 3) and peak RSS of this process."""
    start = perf_counter()
    llm = slmkit.load(model, backend=backend)
    load_s = perf_counter() - start
    llm.generate(PROMPT, max_tokens=8)  # warm-up
    runs = [llm.generate(PROMPT, max_tokens=tokens) for _ in range(3)]
    peak_mb = _peak_rss_mb()
    return {
        "load_s": load_s,
        "ttft_ms": statistics.median(r.timings.ttft_s for r in runs) * 1000,
        "decode_tok_s": statistics.median(r.timings.decode_tokens_per_s for r in runs),
        "tokens": statistics.median(r.usage.completion_tokens for r in runs),
        "peak_rss_mb": peak_mb,
    }


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM on Linux: ru_maxrss survives exec there, so a child
    would report its parent's peak."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def compare(model: str, tokens: int) -> None:
    print(f"== {model}: each backend in a fresh process, {tokens} tokens, median of 3")
    print(f"{'backend':9s} {'load s':>7s} {'TTFT ms':>8s} {'tok/s':>7s} {'peak RSS MB':>12s}")
    for backend in ("onnx", "llamacpp"):
        code = (
            "import json, sys; sys.path.insert(0, 'benchmarks'); import overhead_onnx as b; "
            f"print(json.dumps(b.measure_one({backend!r}, {model!r}, {tokens})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=900
        )
        if out.returncode != 0:
            print(f"{backend:9s} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        m = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{backend:9s} {m['load_s']:7.2f} {m['ttft_ms']:8.1f} {m['decode_tok_s']:7.1f} "
            f"{m['peak_rss_mb']:12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-compare", action="store_true", help="skip the llama.cpp table")
    args = parser.parse_args()
    overhead(args.model, args.tokens, args.rounds)
    if not args.no_compare:
        compare(args.model, args.tokens)


if __name__ == "__main__":
    main()
