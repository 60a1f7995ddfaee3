"""Are slmkit's default settings the fastest this machine has? One run answers it.

    python benchmarks/calibration_sweep.py [--model qwen2.5-coder-0.5b-instruct]
        [--backends llamacpp,onnx,openvino,transformers] [--rounds 3] [--tokens 32]
        [--json sweep.json]

For each local backend, in its own child process, every candidate is loaded at once and
the candidates are timed in alternating rounds (medians; the machine may be shared, so
no candidate gets a quiet stretch the others miss):

- ``default``: what ``slmkit.load(model, backend=...)`` gives (the calibrated setting);
- ``runtime``: the runtime's own default (no thread option, calibration off);
- ``threads=N`` for N in 1..physical cores (explicit option);
- onnx only: the same for each converted int4 accuracy level found in the cache
  (``slmkit convert MODEL --to onnx --accuracy-level 1`` makes the fp32-activation one),
  and ``int4 prompts threads=N``: ``prefill_model=False`` (the int4 model reads prompts
  too), whose TTFT against ``threads=N`` is what the int8 prompt model buys.

Then every backend's default is loaded in one more child and the backends are alternated
in rounds too, so the comparison between backends sees the same load. Each run is the
bench prompt (``slmkit.bench.PROMPT``, as ``slmkit bench`` sends it),
greedy, ``--tokens`` new tokens; TTFT and decode tok/s as docs/benchmarks.md defines
them. Then the checks: each backend's default decode >= 0.95 of its best candidate;
auto's pick (the measured ranking) >= 0.95 of the fastest backend; the onnx default's
TTFT <= 2x the fastest backend's TTFT.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BACKENDS = ("llamacpp", "onnx", "openvino", "transformers")
THREAD_OPTION = {
    "llamacpp": "n_threads",
    "onnx": "threads",
    "openvino": "num_threads",
    "transformers": "n_threads",
}


def candidates(backend: str, model: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, model to load, options) for one backend's sweep."""
    from slmkit.probe import physical_cores

    option = THREAD_OPTION[backend]
    models = [("", model)]
    if backend == "onnx":
        models = [(f"acc{level} ", path) for level, path in onnx_levels(model)]
    found: list[tuple[str, str, dict[str, Any]]] = []
    for prefix, source in models:
        found.append((f"{prefix}runtime", source, {}))
        found += [
            (f"{prefix}threads={n}", source, {option: n}) for n in range(1, physical_cores() + 1)
        ]
    if backend == "onnx":
        found += [
            (f"int4 prompts threads={n}", model, {option: n, "prefill_model": False})
            for n in range(1, physical_cores() + 1)
        ]
    return found


def onnx_levels(model: str) -> list[tuple[int, str]]:
    """The int4 accuracy levels of ``model`` already converted, with their folders."""
    from slmkit.convert import cached_artifact

    levels = []
    for level in (4, 3, 2, 1):
        path = cached_artifact(model, "onnx", accuracy_level=level)
        if path is not None:
            levels.append((level, str(path)))
    return levels


def sweep(backend: str, model: str, rounds: int, tokens: int) -> dict[str, Any]:
    """Child: load every candidate, alternate them ``rounds`` times, return medians."""
    import slmkit

    loaded = [("default", slmkit.load(model, backend=backend))]
    os.environ["SLMKIT_CALIBRATE"] = "0"  # "runtime" must mean the runtime's own choice
    for label, source, options in candidates(backend, model):
        loaded.append((label, slmkit.load(source, backend=backend, **options)))
    chosen = loaded[0][1].info.extra.get("settings")
    return {"backend": backend, "chosen": chosen, "rows": alternate(loaded, rounds, tokens)}


def defaults(backends: list[str], model: str, rounds: int, tokens: int) -> dict[str, Any]:
    """Child: every backend's default (its calibrated setting) in one process, alternated,
    so the comparison between backends sees the same machine load."""
    import slmkit

    os.environ["SLMKIT_CALIBRATE"] = "0"  # use what the sweeps calibrated; measure nothing
    loaded = [(name, slmkit.load(model, backend=name)) for name in backends]
    return {"backend": "defaults", "rows": alternate(loaded, rounds, tokens)}


def alternate(loaded: list[tuple[str, Any]], rounds: int, tokens: int) -> dict[str, Any]:
    """Medians of TTFT and decode over ``rounds`` rounds, each running every LLM once."""
    from slmkit.bench import PROMPT

    def once(llm: Any, n: int) -> Any:
        return (llm.chat if llm.info.is_chat else llm.generate)(PROMPT, max_tokens=n)

    timings: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in loaded}
    for _, llm in loaded:  # warm-up, not counted
        once(llm, 4)
    for round_ in range(rounds):
        # each round starts one candidate later: a runtime's threads keep spinning for a
        # while after a run, which slows whatever runs next, so no candidate always follows
        # the same one
        start = round_ % len(loaded)
        for label, llm in loaded[start:] + loaded[:start]:
            result = once(llm, tokens)
            timings[label].append((result.timings.ttft_s, result.timings.decode_tokens_per_s))
    for _, llm in loaded:
        llm.close()
    return {
        label: {
            "ttft_s": statistics.median(t for t, _ in runs),
            "decode_tok_s": statistics.median(d for _, d in runs),
        }
        for label, runs in timings.items()
    }


def run_child(
    backend: str, args: argparse.Namespace, backends: list[str] | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", backend, "--model", args.model]
    command += ["--rounds", str(args.rounds), "--tokens", str(args.tokens)]
    if backends is not None:
        command += ["--backends", ",".join(backends)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"backend": backend, "error": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def report(results: list[dict[str, Any]], together: dict[str, Any], model: str) -> dict[str, Any]:
    """The sweep tables, the defaults side by side, and the three checks."""
    from slmkit.ranking import rank_backends

    checks: dict[str, Any] = {}
    print(f"\nmodel {model}; medians over alternating rounds; decode tok/s, TTFT ms")
    for result in results:
        name = result["backend"]
        if "error" in result:
            print(f"\n{name}: {result['error']}")
            continue
        rows = result["rows"]
        best_label = max(rows, key=lambda label: rows[label]["decode_tok_s"])
        ratio = rows["default"]["decode_tok_s"] / rows[best_label]["decode_tok_s"]
        checks[f"{name}: default decode / best candidate ({best_label})"] = round(ratio, 3)
        print(f"\n{name} (default = {json.dumps(result['chosen'])})")
        print("| setting | decode tok/s | TTFT ms |\n|---|---|---|")
        for label, row in rows.items():
            mark = " (best)" if label == best_label else ""
            line = f"| {label}{mark} | {row['decode_tok_s']:.1f} | {1000 * row['ttft_s']:.0f} |"
            print(line)
    defaults = together.get("rows", {})
    if defaults:
        print("\nevery backend's default, alternated in one process")
        print("| backend | decode tok/s | TTFT ms |\n|---|---|---|")
        for name, row in defaults.items():
            print(f"| {name} | {row['decode_tok_s']:.1f} | {1000 * row['ttft_s']:.0f} |")
        fastest = max(defaults, key=lambda n: defaults[n]["decode_tok_s"])
        quickest = min(defaults, key=lambda n: defaults[n]["ttft_s"])
        ranking = [r.name for r in rank_backends(model=model) if r.usable]
        auto = next((n for n in ranking if n in defaults), None)
        if auto is not None:
            share = defaults[auto]["decode_tok_s"] / defaults[fastest]["decode_tok_s"]
            checks[f"auto's pick ({auto}) decode / fastest ({fastest})"] = round(share, 3)
        if "onnx" in defaults:
            ttft = defaults["onnx"]["ttft_s"] / defaults[quickest]["ttft_s"]
            checks[f"onnx TTFT / quickest TTFT ({quickest})"] = round(ttft, 2)
    print("\nchecks (targets: >= 0.95, >= 0.95, <= 2)")
    for name, value in checks.items():
        print(f"  {name}: {value}")
    if "error" in together:
        print(f"\ndefaults side by side: {together['error']}")
    return {"model": model, "results": results, "defaults": together, "checks": checks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.child == "defaults":
        print(json.dumps(defaults(names, args.model, args.rounds, args.tokens)))
        return 0
    if args.child:
        print(json.dumps(sweep(args.child, args.model, args.rounds, args.tokens)))
        return 0
    results = []
    for backend in names:
        print(f"{backend}: sweeping in a child process", file=sys.stderr, flush=True)
        results.append(run_child(backend, args))
    swept = [r["backend"] for r in results if "error" not in r]
    print("every default side by side, in one child process", file=sys.stderr, flush=True)
    together = run_child("defaults", args, swept)
    data = report(results, together, args.model)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
