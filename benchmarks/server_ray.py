"""`slmkit serve --ray` on one machine: 1 vs 2 replicas under 2 and 4 concurrent clients,
and TTFT through Ray's proxy vs plain `slmkit serve`, on llama.cpp.

    python benchmarks/server_ray.py [--model qwen2.5-coder-0.5b-instruct] [--max-tokens 32]
        [--rounds 5] [--cpus 2] [--json out.json]

Every configuration gets the whole machine (``--cpus`` cores): plain `slmkit serve` and one
Ray replica decode with ``--cpus`` llama.cpp threads, two replicas with half each. Requests
are the streamed chats of benchmarks/server_load.py (same question, same clock).
Plain `slmkit serve` and one Ray replica answer in alternation (each idle while the other
runs), so a change in machine load hits both TTFTs alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

import httpx
from server_load import Run, free_port, over_http, summary, wait_ready

CLIENTS = (2, 4)


def concurrent(url: str, model: str, max_tokens: int, clients: int) -> dict[str, Any]:
    """Two waves of ``clients`` requests at once: aggregate tok/s over the wall time."""
    limits = httpx.Limits(max_connections=clients)
    with httpx.Client(timeout=300, limits=limits) as client, ThreadPoolExecutor(clients) as pool:
        start = perf_counter()
        waves = range(2 * clients)
        runs = list(pool.map(lambda _: over_http(client, url, model, max_tokens), waves))
        wall = perf_counter() - start
    return summary(runs, wall)


@contextmanager
def plain_serve(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """`slmkit serve` with ``--cpus`` llama.cpp threads; yields its /v1 URL."""
    (folder / "slmkit.toml").write_text(f"[backends.llamacpp]\nn_threads = {args.cpus}\n")
    port = free_port()
    command = [sys.executable, "-m", "slmkit", "serve", args.model, "--backend", "llamacpp"]
    command += ["--port", str(port), "--max-queue", "16", "--log-level", "warning"]
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    process = subprocess.Popen(command, cwd=folder, env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=60)


def deploy(args: argparse.Namespace, base: str, replicas: int) -> None:
    from ray import serve
    from slmkit.server.ray import build_app

    cpus = args.cpus // replicas
    app = build_app(
        args.model, backend="llamacpp", replicas=replicas, num_cpus=cpus, max_queue=16,
        load_options={"n_threads": cpus},
    )  # fmt: skip
    serve.run(app, name="slmkit", route_prefix="/")
    wait_ready(base)


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import ray
    from ray import serve

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    port = free_port()
    base, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    results: dict[str, Any] = {}
    try:
        deploy(args, base, 1)
        with plain_serve(args, folder) as plain_url, httpx.Client(timeout=300) as client:
            for target in (plain_url, url):
                over_http(client, target, args.model, 4)  # warm-ups
            plain: list[Run] = []
            proxied: list[Run] = []
            for _ in range(args.rounds):  # alternating: a change in machine load hits both
                plain.append(over_http(client, plain_url, args.model, args.max_tokens))
                proxied.append(over_http(client, url, args.model, args.max_tokens))
        results["plain_serve"] = summary(plain, sum(r.total_s for r in plain))
        results["ray_1_replica"] = summary(proxied, sum(r.total_s for r in proxied))
        for replicas in (1, 2):
            if replicas == 2:  # delete first: the old replica holds every CPU of the cluster
                serve.delete("slmkit")
                deploy(args, base, 2)
            entry: dict[str, Any] = {"threads_per_replica": args.cpus // replicas}
            for clients in CLIENTS:
                entry[f"{clients}_clients"] = concurrent(url, args.model, args.max_tokens, clients)
            results[f"{replicas}_replicas"] = entry
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="slmkit-bench-") as folder:
        results = measure(args, Path(folder))
    one, two = results["1_replicas"], results["2_replicas"]
    report = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "cpus": args.cpus,
        "load_average": os.getloadavg(),
        **results,
        "ttft_p50_ms": {
            "plain": results["plain_serve"]["ttft_p50_ms"],
            "ray_proxy": results["ray_1_replica"]["ttft_p50_ms"],
        },
        "two_vs_one_replica": {
            f"{c}_clients": two[f"{c}_clients"]["aggregate_tok_s"]
            / one[f"{c}_clients"]["aggregate_tok_s"]
            for c in CLIENTS
            if one[f"{c}_clients"]["aggregate_tok_s"]
        },
    }
    text = json.dumps(report, indent=2)
    if args.json_path:
        Path(args.json_path).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
