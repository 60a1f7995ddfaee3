"""What `slmkit serve` adds per token and to TTFT, over an engine that costs nothing.

The unit tests' scripted engine (tokens are bytes, no model) is served by the real app under
uvicorn in a child process on 127.0.0.1; this process streams chat completions from it over
SSE with httpx, alternating with ``llm.stream()`` in-process on the same engine: long
answers for the cost per token, two-token answers for TTFT (behind a long answer from a free
engine, the first chunk waits on the producing thread for the GIL, which a real runtime
releases while it computes). Both sides
do the core's work; the difference is the server's: the thread-to-event-loop hand-off, a JSON
chunk per token, the socket, and the client reading it. Because the engine is free, the
figures do not depend on a model's speed or on how busy the machine's cores are with one;
compare them with a real model's time per token (16 ms at 60 tok/s) to get the overhead.

    python benchmarks/server_per_token.py [--tokens 4000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from pathlib import Path
from time import perf_counter

from server_load import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Hi"}]


def _scripted_llm():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))  # the tests' scripted engine
    from tests.unit.conftest import make_llm
    from tests.unit.scripted_engine import ScriptedEngine

    return make_llm(ScriptedEngine("abcdefgh", endless=True))


def _serve(port: int) -> None:
    import uvicorn

    from slmkit.server import create_app

    app = create_app(_scripted_llm(), max_queue=4)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _over_http(client, url: str, tokens: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """One streamed chat: (TTFT s, seconds per token after the first, tokens seen)."""
    body = {"messages": MESSAGES, "max_tokens": tokens, "stream": True, "temperature": 0}
    start = perf_counter()
    first = 0.0
    count = 0
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                count += 1
                if count == 1:
                    first = perf_counter()
    end = perf_counter()
    return first - start, (end - first) / max(1, count - 1), count


def _in_process(llm, tokens: int) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    start = perf_counter()
    first = 0.0
    count = 0
    for chunk in llm.stream(MESSAGES, max_tokens=tokens, temperature=0):
        if chunk.text:
            count += 1
            if count == 1:
                first = perf_counter()
    end = perf_counter()
    return first - start, (end - first) / max(1, count - 1), count


def main() -> None:
    import httpx

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,))
    child.start()
    llm = _scripted_llm()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=120) as client:
            wait_ready(base)
            _over_http(client, f"{base}/v1/chat/completions", 50)  # warm both paths
            _in_process(llm, 50)
            served, local, served_ttft, local_ttft = [], [], [], []
            for _ in range(args.rounds):
                served.append(_over_http(client, f"{base}/v1/chat/completions", args.tokens))
                local.append(_in_process(llm, args.tokens))
                for _ in range(10):  # short answers: TTFT without a token flood behind it
                    served_ttft.append(_over_http(client, f"{base}/v1/chat/completions", 2)[0])
                    local_ttft.append(_in_process(llm, 2)[0])
    finally:
        child.terminate()
        child.join(10)
    assert all(run[2] == args.tokens for run in served + local), (served, local)
    ttft = statistics.median(served_ttft) - statistics.median(local_ttft)
    per_token_http = statistics.median(r[1] for r in served)
    per_token_local = statistics.median(r[1] for r in local)
    added = per_token_http - per_token_local
    print(f"in-process: TTFT {statistics.median(local_ttft) * 1e3:.2f} ms, "
          f"{per_token_local * 1e6:.1f} us/token")  # fmt: skip
    print(f"over HTTP:  TTFT {statistics.median(served_ttft) * 1e3:.2f} ms, "
          f"{per_token_http * 1e6:.1f} us/token")  # fmt: skip
    print(f"the server adds {ttft * 1e3:.2f} ms TTFT and {added * 1e6:.1f} us/token "
          f"= {added / 0.016:.2%} of a 16 ms token (60 tok/s)")  # fmt: skip


if __name__ == "__main__":
    main()
