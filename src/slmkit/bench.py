"""``slmkit bench``: the same prompt on every usable local backend, one process each.

Every figure has one definition for every backend (docs/benchmarks.md): the timings
come from the core's generation loop (:mod:`slmkit._generation`), load time and peak
RSS from the child process that ran the backend. Medians over repeats.

The parent runs ``python -m slmkit.bench --worker CONFIG OUT`` per backend, so each
backend's peak RSS is its own and a crash or hang costs one row, not the run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

from .errors import InvalidRequest, SlmkitError

__all__ = ["PROMPT", "autotune", "memory_bandwidth", "run_bench", "summarize"]

#: One prompt for every backend: long enough for a meaningful prefill rate, and it asks
#: for a long answer so decode runs to max_tokens. Chat models get it as a user message,
#: base models as a raw prompt.
PROMPT = (
    "The following is a detailed, friendly explanation written for curious readers. "
    "It covers how a refrigerator keeps food cold: the refrigerant, the compressor, the "
    "condenser coils at the back, the expansion valve and the evaporator inside, why the "
    "back of the fridge feels warm, and why leaving the door open does not cool a kitchen. "
    "It is written in plain language, one idea per paragraph, with everyday examples.\n\n"
    "How a refrigerator keeps food cold\n\n"
)
#: Overhead runs continue a raw prompt that does not end early.
OVERHEAD_PROMPT = "Once upon a time, in a small village by the sea, there lived"

Progress = Callable[[str], None]


def memory_bandwidth(seconds: float = 0.5, threads: int | None = None) -> float:
    """This machine's memory read bandwidth in bytes/s: the best of repeated reads of a
    128 MiB buffer on every physical core (numpy), or of copies (no numpy)."""
    from .probe import physical_cores

    size = 128 * 2**20
    deadline = perf_counter() + seconds
    best = 0.0
    try:
        import numpy as np
    except ImportError:
        src, dst = bytearray(size), bytearray(size)
        while perf_counter() < deadline or best == 0.0:
            start = perf_counter()
            dst[:] = src
            best = max(best, 2 * size / (perf_counter() - start))  # read + write
        return best
    data = np.ones(size // 8, dtype=np.int64)
    parts = np.array_split(data, threads or physical_cores())
    while perf_counter() < deadline or best == 0.0:
        workers = [threading.Thread(target=np.bitwise_or.reduce, args=(p,)) for p in parts]
        start = perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = max(best, size / (perf_counter() - start))
    return best


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: list[dict[str, Any]], bandwidth: float | None = None) -> dict[str, Any]:
    """Medians over the measured runs of one backend, and decode as a share of the
    machine's limit (bandwidth / bytes read per token ~ the artifact's weights)."""
    if not runs:
        raise InvalidRequest("no measured runs to summarize", field="runs")
    prefill = [r["prompt_tokens"] / r["ttft_s"] for r in runs if r["ttft_s"] > 0]
    summary: dict[str, Any] = {
        "runs": len(runs),
        "ttft_s": _median([r["ttft_s"] for r in runs]),
        "prefill_tok_s": _median(prefill),
        "decode_tok_s": _median([r["decode_tok_s"] for r in runs if r["decode_tok_s"] > 0]),
        "prompt_tokens": int(_median([r["prompt_tokens"] for r in runs]) or 0),
        "completion_tokens": int(_median([r["completion_tokens"] for r in runs]) or 0),
    }
    return summary


def decode_limit(bandwidth: float | None, artifact_bytes: int | None) -> float | None:
    """Tokens/s the memory could feed if each token reads the whole artifact once."""
    if not bandwidth or not artifact_bytes:
        return None
    return bandwidth / artifact_bytes


# -- parent --------------------------------------------------------------------------


def run_bench(
    model: str | None = None,
    backends: Sequence[str] | None = None,
    *,
    repeats: int = 3,
    max_tokens: int = 128,
    overhead: bool = False,
    budget_s: float = 60.0,
    timeout_s: float = 300.0,
    progress: Progress | None = None,
    recalibrate: bool = False,
) -> dict[str, Any]:
    """Benchmark ``backends`` (default: every usable local backend) on ``model``.

    Each backend loads with the settings calibrated for this machine (measured at its
    first load, or again now with ``recalibrate``; each row's ``tuning`` says which).
    Returns the JSON-ready report: hardware, bandwidth, one row per backend (an
    ``error`` field when it failed), the backend auto picks by rules and by measurement.
    """
    from .catalog.models import DEFAULT_MODEL
    from .config import load_settings
    from .probe import probe
    from .ranking import rank_backends

    if repeats < 1 or max_tokens < 2:
        raise InvalidRequest("repeats must be >= 1 and max_tokens >= 2", field="repeats")
    model = model or load_settings().model or DEFAULT_MODEL
    report = probe(refresh=True)
    ranking = rank_backends(report, model, measured=False)
    names = list(backends) if backends else [r.name for r in ranking if r.usable]
    note = progress or (lambda _: None)
    load_before = _load_average()
    note("measuring memory bandwidth")
    bandwidth = memory_bandwidth()
    config = {
        "model": model,
        "repeats": repeats,
        "max_tokens": max_tokens,
        "overhead": overhead,
        "budget_s": budget_s,
        "recalibrate": recalibrate,
    }
    rows = []
    for name in names:
        note(f"{name}: loading {model} in a fresh process")
        row = _run_child({**config, "backend": name}, timeout_s)
        if "error" not in row:
            row["decode_limit_tok_s"] = decode_limit(bandwidth, row.get("artifact_bytes"))
            limit, decode = row["decode_limit_tok_s"], row.get("decode_tok_s")
            row["decode_fraction"] = decode / limit if limit and decode else None
        rows.append(row)
    measured = [r for r in rows if r.get("decode_tok_s")]
    load_after = _load_average()
    fastest = max(measured, key=lambda r: r["decode_tok_s"])["backend"] if measured else None
    auto = next((r.name for r in ranking if r.usable), None)
    measured_ranking = rank_backends(report, model)  # the calibrations the children stored
    return {
        "model": model,
        "machine": report.fingerprint(),
        "hardware": report.to_dict(),
        "memory_bandwidth_bytes_s": bandwidth,
        "load_average": [load_before, load_after],
        "busy": max(load_before or 0.0, load_after or 0.0) > report.logical_cores,
        "settings": {k: v for k, v in config.items() if k != "model"},
        "results": rows,
        "fastest": fastest,
        "auto_pick_by_rules": auto,
        "auto_pick": next((r.name for r in measured_ranking if r.usable), None),
    }


def _load_average() -> float | None:
    """The 1-minute load average: above the core count, other work skews the figures."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _run_child(config: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    backend = config["backend"]
    with tempfile.TemporaryDirectory(prefix="slmkit-bench-") as tmp:
        cfg_path, out_path = Path(tmp, "config.json"), Path(tmp, "result.json")
        cfg_path.write_text(json.dumps(config), encoding="utf-8")
        command = [sys.executable, "-m", "slmkit.bench", "--worker", str(cfg_path), str(out_path)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            if out_path.is_file():  # the runs measured before the timeout still count
                partial: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
                partial["note"] = f"stopped at the {timeout_s:.0f} s timeout"
                return partial
            return {"backend": backend, "error": f"timed out after {timeout_s:.0f} s"}
        if out_path.is_file():
            result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
            if proc.returncode == 0 or "error" in result:
                return result
            # It died after some runs: keep them, and say how it ended.
            return {**result, **_crash_row(backend, proc.returncode, proc.stderr)}
        return {"backend": backend, **_crash_row(backend, proc.returncode, proc.stderr)}


def _crash_row(backend: str, returncode: int, stderr: str) -> dict[str, Any]:
    """A child that died without a result: which signal, and what slmkit does about it
    on this machine (the configuration its crash trials chose, or that none covers it)."""
    from .trial import describe_exit, stored_decisions

    signal_name, words = describe_exit(returncode)
    tail = " | ".join(stderr.strip().splitlines()[-2:])
    if signal_name is None:
        return {"error": f"the bench process exited with {words}: {tail}".rstrip(": ")}
    decisions = [d for d in stored_decisions() if d.backend == backend]
    if decisions:
        action = (
            f"slmkit already loads it here with the configuration its crash trial chose "
            f"({decisions[0].reason}), so this fault is one the trial does not cover"
        )
    else:
        action = "slmkit has no crash trial for this backend"
    return {
        "error": (
            f"{backend} crashed with {words} in its bench process (yours is unharmed); "
            f"{action}: use another backend here, and report it with `slmkit probe --json`"
        ),
        "crash_signal": signal_name,
    }


def autotune(report: dict[str, Any]) -> Path:
    """Store a bench report's measured ranking for (machine, model, backend versions);
    ``backend="auto"`` then prefers it over the rule table."""
    from .probe import HardwareReport
    from .ranking import store_measurement

    hardware = HardwareReport.from_dict(report["hardware"])
    keep = ("backend", "versions", "decode_tok_s", "ttft_s", "load_s", "peak_rss_bytes", "tuning")
    results = [{k: r.get(k) for k in keep} for r in report["results"] if r.get("decode_tok_s")]
    if not results:
        raise InvalidRequest("no backend produced a measurement; nothing to store")
    return store_measurement(hardware, report["model"], results)


# -- child ---------------------------------------------------------------------------


def _worker(config: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Load one backend, warm up, run the prompt ``repeats`` times; report the figures.

    ``emit`` gets the row so far after every measured run, so a timeout keeps them."""
    from ._api import load
    from .ranking import backend_versions
    from .registry import get_backend

    backend = config["backend"]
    if config.get("recalibrate"):
        os.environ["SLMKIT_CALIBRATE"] = "refresh"
    start = perf_counter()
    llm = load(config["model"], backend=backend)
    load_s = perf_counter() - start
    info = llm.info
    max_tokens = config["max_tokens"]

    def once(tokens: int) -> Any:
        if info.is_chat:
            return llm.chat(PROMPT, max_tokens=tokens, temperature=0.0)
        return llm.generate(PROMPT, max_tokens=tokens, temperature=0.0)

    # Warm-up (not counted): first-request costs are not decode. Its speed also sizes the
    # runs so a slow backend fits its time budget: fewer new tokens, same prompt.
    warm = once(8)
    tokens = _tokens_within(config["budget_s"] / config["repeats"], warm.timings, max_tokens)
    runs: list[dict[str, Any]] = []
    began = perf_counter()
    for _ in range(config["repeats"]):
        result = once(tokens)
        runs.append(
            {
                "ttft_s": result.timings.ttft_s,
                "decode_tok_s": result.timings.decode_tokens_per_s,
                "total_s": result.timings.total_s,
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
            }
        )
        row: dict[str, Any] = {
            "backend": backend,
            "versions": backend_versions(get_backend(backend)),
            "device": info.device,
            "artifact": info.artifact,
            "artifact_bytes": _size(info.artifact),
            "load_s": load_s,
            "tuning": info.extra.get("settings"),
            **summarize(runs),
            "repeats_done": len(runs),
            "max_tokens": tokens,
            "raw": runs,
            "peak_rss_bytes": _peak_rss(),
        }
        emit(row)
        if perf_counter() - began > config["budget_s"]:
            break
    if config.get("overhead"):
        pairs = max(3, config["repeats"])
        tokens = min(64, tokens)  # sized to the budget like the runs
        row.update(_overhead(llm, get_backend(backend), pairs, tokens, config["budget_s"]))
        row["peak_rss_bytes"] = _peak_rss()
        emit(row)
    llm.close()
    row["peak_rss_bytes"] = _peak_rss()
    return row


def _tokens_within(seconds: float, warm: Any, max_tokens: int) -> int:
    """New tokens a run can make in ``seconds`` at the warm-up's speed (16 at least)."""
    rate = warm.decode_tokens_per_s
    if rate <= 0:
        return max_tokens
    return min(max_tokens, max(16, int((seconds - warm.ttft_s) * rate)))


def _overhead(llm: Any, cls: Any, pairs: int, tokens: int, budget_s: float) -> dict[str, Any]:
    """slmkit vs the runtime's own loop on the same loaded model, alternating in one run.

    The backend module's ``direct_decode(engine, prompt_ids, n)`` yields the runtime's
    greedy tokens (docs/benchmarks.md); both sides are timed with the same definitions.
    ``overhead_ratio`` is slmkit's decode tok/s over the direct one (1.0: no overhead).
    """
    import importlib

    direct = getattr(importlib.import_module(cls.__module__), "direct_decode", None)
    if direct is None:
        return {"overhead_error": f"{cls.__module__} defines no direct_decode()"}
    engine = llm._engine
    prompt_ids = engine.tokenize(OVERHEAD_PROMPT, add_special=True)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    began = perf_counter()
    for _ in range(pairs):  # both paths are warm: the runs above used this model
        if ours and perf_counter() - began > budget_s:
            break
        *_, final = llm.stream_generate(OVERHEAD_PROMPT, max_tokens=tokens, temperature=0.0)
        ours.append((final.timings.ttft_s, final.timings.decode_tokens_per_s))
        theirs.append(_time_direct(direct(engine, prompt_ids, tokens)))
    ours_rate = statistics.median(r for _, r in ours)
    theirs_rate = statistics.median(r for _, r in theirs)
    ttft_delta = statistics.median(t for t, _ in ours) - statistics.median(t for t, _ in theirs)
    return {
        "overhead_ratio": ours_rate / theirs_rate if theirs_rate else None,
        "overhead_pairs": len(ours),
        "overhead_slmkit_decode_tok_s": ours_rate,
        "overhead_direct_decode_tok_s": theirs_rate,
        "overhead_ttft_delta_ms": 1000 * ttft_delta,
    }


def _time_direct(tokens: Iterator[int]) -> tuple[float, float]:
    """TTFT and decode tok/s of a token iterator, defined as in slmkit._generation."""
    start = perf_counter()
    first = last = start
    count = 0
    for _ in tokens:
        last = perf_counter()
        if count == 0:
            first = last
        count += 1
    rate = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    return first - start, rate


def _size(artifact: str) -> int | None:
    path = Path(artifact) if artifact else None
    if path is None or not path.exists():
        return None
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _worker_main(argv: list[str]) -> int:
    cfg_path, out_path = Path(argv[0]), Path(argv[1])
    config = json.loads(cfg_path.read_text(encoding="utf-8"))

    def emit(row: dict[str, Any]) -> None:
        staging = out_path.with_suffix(".partial")
        staging.write_text(json.dumps(row), encoding="utf-8")
        staging.replace(out_path)

    try:
        row = _worker(config, emit)
    except SlmkitError as exc:
        row = {"backend": config["backend"], "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        row = {"backend": config["backend"], "error": f"failed: {type(exc).__name__}: {exc}"}
    out_path.write_text(json.dumps(row), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit("usage: use `slmkit bench`; this module's entry point is for its child processes")
