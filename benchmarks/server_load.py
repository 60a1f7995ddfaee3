"""`slmkit serve` under load: 1 client vs 8 concurrent clients, and the server's overhead
over ``llm.stream()`` in-process, on one backend.

    python benchmarks/server_load.py [--backend llamacpp] [--model qwen2.5-coder-0.5b-instruct]
        [--option KEY=VALUE ...] [--parallel 1] [--max-tokens 32] [--rounds 5] [--clients 8]
        [--json out.json]

A batching runtime: ``--backend openvino --option continuous_batching=true --parallel 8``
(the options reach the server through a temporary slmkit.toml).

Every request asks the same question with a checkable answer ("Paris") and streams it over
SSE with httpx (a thin client, so the client's own parsing stays out of the figures).
TTFT is request sent to first generated text; decode tok/s is tokens after the first over
the time after the first, as in docs/benchmarks.md. In-process and single-client server
runs alternate (each side on its own loaded model), so a drift in machine load hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from time import perf_counter

import httpx

import slmkit

#: Checkable ("Paris") and long enough to fill max_tokens, so decode speed is measured.
QUESTION = "Name the capital of France, then describe that city in three sentences."
MESSAGES = [{"role": "user", "content": QUESTION}]


@dataclass
class Run:
    ttft_s: float
    decode_tok_s: float
    tokens: int
    total_s: float
    text: str
    error: str = ""


def in_process(llm: slmkit.LLM, max_tokens: int) -> Run:
    start = perf_counter()
    first = None
    parts = []
    final = None
    for chunk in llm.stream(MESSAGES, max_tokens=max_tokens):  # type: ignore[arg-type]
        if first is None and chunk.text:
            first = perf_counter()
        parts.append(chunk.text)
        final = chunk
    end = perf_counter()
    assert final is not None and final.usage is not None and first is not None
    tokens = final.usage.completion_tokens
    rate = (tokens - 1) / (end - first) if tokens > 1 else 0.0
    return Run(first - start, rate, tokens, end - start, "".join(parts))


def over_http(client: httpx.Client, url: str, model: str, max_tokens: int) -> Run:
    body = {
        "model": model,
        "messages": MESSAGES,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = perf_counter()
    first = None
    parts: list[str] = []
    tokens = 0
    try:
        with client.stream("POST", f"{url}/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                return Run(0, 0, 0, 0, "", f"HTTP {response.status_code}: {response.text[:200]}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return Run(0, 0, 0, 0, "", event["error"]["message"])
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
                for choice in event["choices"]:
                    text = choice["delta"].get("content") or ""
                    if text and first is None:
                        first = perf_counter()
                    parts.append(text)
    except httpx.HTTPError as exc:
        return Run(0, 0, 0, 0, "", f"{type(exc).__name__}: {exc}")
    end = perf_counter()
    if first is None:
        return Run(0, 0, 0, 0, "", "no text")
    rate = (tokens - 1) / (end - first) if tokens > 1 else 0.0
    return Run(first - start, rate, tokens, end - start, "".join(parts))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(runs: list[Run], wall_s: float) -> dict[str, object]:
    good = [r for r in runs if not r.error]
    ttfts = [r.ttft_s for r in good] or [0.0]
    return {
        "requests": len(runs),
        "errors": len(runs) - len(good),
        "correct": sum("Paris" in r.text for r in good),
        "aggregate_tok_s": sum(r.tokens for r in good) / wall_s if wall_s else 0.0,
        "ttft_p50_ms": 1000 * percentile(ttfts, 0.5),
        "ttft_p95_ms": 1000 * percentile(ttfts, 0.95),
        "decode_tok_s_median": statistics.median([r.decode_tok_s for r in good] or [0.0]),
        "error_messages": sorted({r.error for r in runs if r.error}),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model: str, backend: str, options: dict[str, object], port: int, clients: int, parallel: int
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "slmkit", "serve", model, "--backend", backend]
    command += ["--port", str(port), "--max-queue", str(2 * clients), "--log-level", "warning"]
    command += ["--parallel", str(parallel)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    if options:
        config = Path(tempfile.mkdtemp(prefix="slmkit-bench-")) / "slmkit.toml"
        lines = [f"[backends.{backend}]"] + [f"{k} = {json.dumps(v)}" for k, v in options.items()]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        env["SLMKIT_CONFIG"] = str(config)
    process = subprocess.Popen(command, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
    except SystemExit:
        process.kill()
        raise
    return process


def wait_ready(
    base: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 300
) -> None:
    """Until ``base``'s /health says 200; SystemExit if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"slmkit serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{base} did not become ready within {timeout:.0f} s")


def parse_option(item: str) -> tuple[str, object]:
    """KEY=VALUE, the value read as JSON when it is JSON (true, 8, 1.5), else a string."""
    key, _, raw = item.partition("=")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    options = dict(parse_option(item) for item in args.option)

    llm = slmkit.load(args.model, backend=args.backend, **options)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = start_server(args.model, args.backend, options, port, args.clients, args.parallel)
    try:
        with httpx.Client(timeout=300) as client:
            in_process(llm, 4)  # warm-ups
            over_http(client, url, args.model, 4)
            local: list[Run] = []
            single: list[Run] = []
            for _ in range(args.rounds):  # alternating: a change in machine load hits both
                local.append(in_process(llm, args.max_tokens))
                single.append(over_http(client, url, args.model, args.max_tokens))
            single_wall = sum(r.total_s for r in single)
        limits = httpx.Limits(max_connections=args.clients)
        with (
            httpx.Client(timeout=300, limits=limits) as client,
            ThreadPoolExecutor(args.clients) as pool,
        ):
            start = perf_counter()
            futures = [
                pool.submit(over_http, client, url, args.model, args.max_tokens)
                for _ in range(args.clients)
            ]
            concurrent = [f.result() for f in futures]
            concurrent_wall = perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=60)
        llm.close()

    local_decode = statistics.median(r.decode_tok_s for r in local)
    local_ttft = statistics.median(r.ttft_s for r in local)
    one = summary(single, single_wall)
    many = summary(concurrent, concurrent_wall)
    report = {
        "model": args.model,
        "backend": args.backend,
        "options": options,
        "parallel": args.parallel,
        "max_tokens": args.max_tokens,
        "load_average": os.getloadavg(),
        "in_process": {
            "ttft_ms_median": 1000 * local_ttft,
            "decode_tok_s_median": local_decode,
            "correct": sum("Paris" in r.text for r in local),
            "runs": len(local),
        },
        "server_1_client": one,
        f"server_{args.clients}_clients": many,
        "scaling": many["aggregate_tok_s"] / one["aggregate_tok_s"]  # type: ignore[operator]
        if one["aggregate_tok_s"]
        else None,
        "overhead": {
            "decode_fraction": 1 - one["decode_tok_s_median"] / local_decode  # type: ignore[operator]
            if local_decode
            else None,
            "ttft_ms": one["ttft_p50_ms"] - 1000 * local_ttft,  # type: ignore[operator]
        },
        "runs": {
            "in_process": [asdict(r) for r in local],
            "single": [asdict(r) for r in single],
            "concurrent": [asdict(r) for r in concurrent],
        },
    }
    text = json.dumps(report, indent=2)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            handle.write(text)
    brief = {k: v for k, v in report.items() if k != "runs"}
    print(json.dumps(brief, indent=2))


if __name__ == "__main__":
    main()
