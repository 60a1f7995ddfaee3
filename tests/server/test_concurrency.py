"""Hang-ups, a full queue, SIGTERM and a failed start, against real `slmkit serve` processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .conftest import API_KEY, BASE_MODEL, ServerProcess, child_env, requires, requires_models

pytestmark = pytest.mark.timeout(240)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
#: A base model keeps counting for thousands of tokens: a generation that would run long.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"
LONG = {"model": BASE_MODEL, "prompt": COUNTING, "max_tokens": 900, "stream": True}


def gauge(server: ServerProcess, name: str) -> float:
    import httpx

    text = httpx.get(f"{server.base}/metrics", headers=AUTH, timeout=10).text
    found = re.search(rf'^{name}{{model="{BASE_MODEL}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def text_events(lines: Iterator[str]) -> Iterator[str]:
    """The data lines that carry text, read from ``lines`` (left open for more reading)."""
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            choices = json.loads(line[6:])["choices"]
            if choices and choices[0]["text"]:
                yield str(line)


def test_a_client_that_hangs_up_frees_the_model_at_once(server: ServerProcess) -> None:
    import httpx

    cancelled = gauge(server, "slmkit_requests_cancelled_total")
    with (
        httpx.Client(timeout=60, headers=AUTH) as client,
        client.stream("POST", f"{server.url}/completions", json=LONG) as response,
    ):
        assert response.status_code == 200
        events = text_events(response.iter_lines())
        next(events)
        start = time.monotonic()
        for _ in range(4):
            next(events)
        rate = 4 / (time.monotonic() - start)  # this machine's decode speed, right now
    hung_up = time.monotonic()
    left_s = (LONG["max_tokens"] - 5) / rate  # what the generation would still take
    # Had it gone on, this one-token request would have waited behind it.
    quick = {"model": BASE_MODEL, "prompt": "Hello", "max_tokens": 1}
    answer = httpx.post(f"{server.url}/completions", json=quick, headers=AUTH, timeout=300)
    waited = time.monotonic() - hung_up
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 1
    assert waited < left_s / 3, f"waited {waited:.1f} s; the rest would take {left_s:.1f} s"
    assert gauge(server, "slmkit_requests_cancelled_total") == cancelled + 1


def test_a_full_queue_answers_503_with_retry_after_and_hang_ups_leave_the_queue(
    server: ServerProcess,
) -> None:
    import httpx

    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=60, headers=AUTH))
        for _ in range(3):  # one runs, two wait: the server runs with --max-queue 2
            response = stack.enter_context(
                client.stream("POST", f"{server.url}/completions", json=LONG)
            )
            assert response.status_code == 200
        wait_for(lambda: gauge(server, "slmkit_queue_depth") == 2)
        assert gauge(server, "slmkit_requests_running") == 1
        refused = client.post(
            f"{server.url}/completions",
            json={"model": BASE_MODEL, "prompt": "Hi", "max_tokens": 1},
        )
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "queue_full" and error["type"] == "server_error"
    # every client hung up, the two waiting ones included: nothing waits, nothing runs
    wait_for(lambda: gauge(server, "slmkit_queue_depth") == 0)
    wait_for(lambda: gauge(server, "slmkit_requests_running") == 0)


def test_sigterm_finishes_the_stream_in_flight_then_exits_0(tmp_path: Path) -> None:
    requires("fastapi", "uvicorn", extra="server")
    requires("llama_cpp", extra="llamacpp")
    requires_models()
    import httpx

    process = ServerProcess([BASE_MODEL, "--backend", "llamacpp"], tmp_path / "server.log")
    try:
        process.wait_ready()
        body = {
            "prompt": COUNTING,
            "max_tokens": 40,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with httpx.stream("POST", f"{process.url}/completions", json=body, timeout=120) as reply:
            lines = reply.iter_lines()
            next(text_events(lines))
            process.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # draining: no new connections
                httpx.get(f"{process.base}/health", timeout=5)
            events = [line[6:] for line in lines if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        usage = json.loads(events[-2])["usage"]
        assert usage["completion_tokens"] > 1
        assert process.process.wait(timeout=60) == 0, process.log()
        assert "Traceback" not in process.log()
    finally:
        process.stop()


def test_serve_exits_1_when_the_default_model_cannot_load(tmp_path: Path) -> None:
    requires("fastapi", "uvicorn", extra="server")
    missing = tmp_path / "missing.gguf"
    process = ServerProcess([str(missing)], tmp_path / "server.log")
    try:
        assert process.process.wait(timeout=90) == 1
        assert "does not exist" in process.log() and "Traceback" not in process.log()
    finally:
        process.stop()


def test_import_slmkit_does_not_import_fastapi() -> None:
    code = "import slmkit, sys; print('fastapi' in sys.modules or 'uvicorn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, check=True, env=child_env(),
    )  # fmt: skip
    assert result.stdout.strip() == "False"
