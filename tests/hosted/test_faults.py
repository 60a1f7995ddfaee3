"""Retries and typed errors, against a server of our own that fails on purpose.

Every test runs on each hosted backend: openai, nim and github share the openai SDK,
azure goes through azure-ai-inference; the behaviour must be the same.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

import slmkit
from slmkit import errors
from slmkit._llm import LLM

from . import faults as f
from .conftest import HOSTED_BACKENDS, backend_options
from .faults import FaultServer

pytestmark = pytest.mark.parametrize("backend", HOSTED_BACKENDS)

QUESTION = "Say hello"


def _load(backend: str, server: FaultServer, **options: Any) -> LLM:
    settings = {"timeout": 2.0, "connect_timeout": 2.0, "max_retries": 2, "backoff_max": 0.05}
    settings.update(options)
    return slmkit.load(
        "fault-model", backend=backend, **backend_options(backend, server.url, **settings)
    )


def _retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [
        float(m.group(1))
        for record in caplog.records
        if (m := re.search(r"retry \d+ of \d+ in ([0-9.]+)s", record.getMessage()))
    ]


def test_a_healthy_stream_gives_text_finish_and_usage(backend: str, faults: FaultServer) -> None:
    result = _load(backend, faults).chat(QUESTION, max_tokens=5, stop=["\n\n"])
    assert result.text == "Hello world!"
    assert result.finish_reason == "stop"
    assert result.usage == slmkit.Usage(prompt_tokens=11, completion_tokens=3)
    sent = faults.seen[0].body
    assert sent["stream"] is True
    assert sent["max_tokens"] == 5
    assert sent["stop"] == ["\n\n"]
    assert sent["messages"] == [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize("finish", ["content_filter", "tool_calls", "length"])
def test_the_service_finish_reason_is_kept(backend: str, faults: FaultServer, finish: str) -> None:
    faults.queue(f.ending(finish=finish))
    assert _load(backend, faults).chat(QUESTION).finish_reason == finish


def test_a_stream_without_usage_reports_usage_unknown_not_zero(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.ending(usage=False))
    result = _load(backend, faults).chat(QUESTION)
    assert result.text == "Hello world!"
    assert result.usage is None


def test_sse_comment_lines_are_ignored(backend: str, faults: FaultServer) -> None:
    faults.queue(f.with_comments())
    assert _load(backend, faults).chat(QUESTION).text == "Hello world!"


def test_429_with_retry_after_seconds_is_retried_after_that_wait(
    backend: str, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    faults.queue(f.status(429, "slow down", {"Retry-After": "1"}))
    with caplog.at_level(logging.INFO, logger="slmkit.hosted"):
        result = _load(backend, faults).chat(QUESTION)
    assert result.text == "Hello world!"
    assert faults.requests == 2
    assert _retry_waits(caplog) == [1.0]


def test_429_with_retry_after_http_date_is_honoured(
    backend: str, faults: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=2)
    faults.queue(f.status(429, "slow down", {"Retry-After": format_datetime(when, usegmt=True)}))
    with caplog.at_level(logging.INFO, logger="slmkit.hosted"):
        result = _load(backend, faults).chat(QUESTION)
    assert result.text == "Hello world!"
    [wait] = _retry_waits(caplog)
    assert 0.0 <= wait <= 2.0


def test_429_beyond_the_retry_after_cap_fails_at_once_with_the_hint(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.status(429, "quota exhausted", {"Retry-After": "120"}))
    with pytest.raises(errors.RateLimitError, match="quota exhausted") as info:
        _load(backend, faults, retry_after_max=5).chat(QUESTION)
    assert info.value.retry_after == 120.0
    assert faults.requests == 1


def test_429_until_retries_run_out_raises_rate_limit_error(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(*[f.status(429, "busy", {"Retry-After": "0"})] * 3)
    with pytest.raises(errors.RateLimitError) as info:
        _load(backend, faults, max_retries=2).chat(QUESTION)
    assert info.value.retry_after == 0.0
    assert faults.requests == 3


@pytest.mark.parametrize("code", [500, 502, 503, 408, 409])
def test_retryable_statuses_are_retried_then_succeed(
    backend: str, faults: FaultServer, code: int
) -> None:
    faults.queue(f.status(code), f.status(code))
    assert _load(backend, faults).chat(QUESTION).text == "Hello world!"
    assert faults.requests == 3


def test_5xx_until_retries_run_out_raises_service_error_with_status_and_message(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(*[f.status(503, "overloaded, try later")] * 2)
    with pytest.raises(errors.ServiceError, match="overloaded, try later") as info:
        _load(backend, faults, max_retries=1).chat(QUESTION)
    assert info.value.status == 503
    assert faults.requests == 2


def test_401_is_an_authentication_error_naming_the_env_var(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.status(401, "invalid api key"))
    env = {"openai": "OPENAI_API_KEY", "azure": "AZURE_AI_CHAT_KEY", "nim": "NVIDIA_API_KEY"}
    with pytest.raises(errors.AuthenticationError, match=env.get(backend, "GITHUB_TOKEN")):
        _load(backend, faults).chat(QUESTION)
    assert faults.requests == 1  # never retried


def test_404_model_is_a_service_error_naming_the_model(backend: str, faults: FaultServer) -> None:
    faults.queue(f.status(404, "The model `fault-model` does not exist"))
    with pytest.raises(errors.ServiceError, match="does not exist") as info:
        _load(backend, faults).chat(QUESTION)
    assert info.value.status == 404
    assert "'fault-model'" in str(info.value)
    assert faults.requests == 1


@pytest.mark.parametrize("code", [400, 422])
def test_other_4xx_are_not_retried(backend: str, faults: FaultServer, code: int) -> None:
    faults.queue(f.status(code, "bad field"))
    with pytest.raises(errors.ServiceError, match="bad field") as info:
        _load(backend, faults).chat(QUESTION)
    assert info.value.status == code
    assert faults.requests == 1


def test_410_gone_is_service_retired(backend: str, faults: FaultServer) -> None:
    faults.queue(f.status(410, "gone"))
    with pytest.raises(errors.ServiceRetired, match="410") as info:
        _load(backend, faults).chat(QUESTION)
    assert info.value.status == 410
    if backend == "github":
        assert "retired on 2026-07-30" in str(info.value)
        assert "'azure'" in str(info.value)
    assert faults.requests == 1


def test_a_server_slower_than_the_timeout_raises_request_timeout(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(*[f.slow(5)] * 2)
    with pytest.raises(errors.RequestTimeout, match="timeout"):
        _load(backend, faults, timeout=0.5, max_retries=1).chat(QUESTION)
    assert faults.requests == 2  # a timeout is retried


def test_a_slow_answer_within_the_retries_succeeds(backend: str, faults: FaultServer) -> None:
    faults.queue(f.slow(5))
    assert _load(backend, faults, timeout=0.5).chat(QUESTION).text == "Hello world!"


def test_a_stream_cut_halfway_raises_stream_interrupted_with_the_partial_text(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.cut(after_chunks=2))
    llm = _load(backend, faults)
    received = []
    with pytest.raises(errors.StreamInterrupted) as info:
        for chunk in llm.stream([{"role": "user", "content": QUESTION}]):
            received.append(chunk)
    assert info.value.partial_text == "Hello world"
    assert "".join(c.text for c in received) == "Hello world"
    assert all(c.finish_reason is None for c in received)  # never a normal finish
    assert faults.requests == 1


def test_a_stream_that_goes_silent_raises_stream_interrupted(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.stall(after_chunks=2, seconds=5))
    with pytest.raises(errors.StreamInterrupted) as info:
        _load(backend, faults, timeout=0.5).chat(QUESTION)
    assert info.value.partial_text == "Hello world"


def test_a_stream_longer_than_the_total_timeout_raises_stream_interrupted(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.drip(0.3))
    with pytest.raises(errors.StreamInterrupted, match=r"took longer than 0\.8 s"):
        _load(backend, faults, timeout=0.8, read_timeout=5).chat(QUESTION)


def test_malformed_json_in_the_stream_raises_stream_interrupted(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.malformed(after_chunks=1))
    with pytest.raises(errors.StreamInterrupted) as info:
        _load(backend, faults).chat(QUESTION)
    assert info.value.partial_text == "Hello"


def test_cancelling_an_async_stream_hangs_up_on_the_server(
    backend: str, faults: FaultServer
) -> None:
    faults.queue(f.drip(0.5))
    llm = _load(backend, faults, timeout=30, read_timeout=30)

    async def run() -> None:
        async def consume() -> None:
            async for _ in llm.astream([{"role": "user", "content": QUESTION}]):
                await asyncio.sleep(0)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.8)  # a piece or two has arrived; the rest is still coming
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert faults.hung_up.wait(timeout=10)  # the connection was closed, not drained


def test_connection_refused_is_retried_then_a_service_error(backend: str) -> None:
    from .conftest import _free_port, requires_hosted_extra

    requires_hosted_extra()
    url = f"http://127.0.0.1:{_free_port()}/v1"
    options = backend_options(backend, url, max_retries=1, backoff_max=0.01, timeout=2)
    llm = slmkit.load("fault-model", backend=backend, **options)
    with pytest.raises(errors.ServiceError, match="cannot connect"):
        llm.chat(QUESTION)
