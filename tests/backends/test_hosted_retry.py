"""The hosted retry layer on its own: which failures are retried, and how long it waits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from slmkit.backends._retry import (
    Failure,
    RetryPolicy,
    parse_retry_after,
    retryable_status,
    with_retries,
)
from slmkit.errors import RateLimitError, ServiceError

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "Sun, 22 Nov 2026 12:00:07 GMT"}, 7.0),
        ({"Retry-After": "Sun, 22 Nov 2026 11:59:00 GMT"}, 0.0),  # in the past: no wait
        ({"Retry-After": "soon"}, None),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_http_dates_and_milliseconds(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(headers, now=lambda: NOW) == seconds


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_these_statuses_are_retried(status: int) -> None:
    assert retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_4xx_are_not_retried(status: int) -> None:
    assert not retryable_status(status)


def test_backoff_grows_with_jitter_and_stays_under_the_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=0.5, backoff_max=4.0)
    for attempt in range(1, 11):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.delay(attempt, None) for _ in range(50)]
        assert all(w is not None and 0.0 <= w <= ceiling for w in waits)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retry_after_max=30)
    assert policy.delay(1, 12.0) == 12.0
    assert policy.delay(1, 31.0) is None  # longer than the cap: give up and report it


def _flaky(failures: list[Exception]):  # type: ignore[no-untyped-def]
    calls = []

    def attempt() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "ok"

    return attempt, calls


def _classify(exc: Exception) -> Failure:
    status = int(str(exc))
    error = RateLimitError("limited", 1.0) if status == 429 else ServiceError("x", status)
    return Failure(error, retryable=retryable_status(status), retry_after=0.0)


def test_retries_until_success_sleeping_between_tries() -> None:
    attempt, calls = _flaky([RuntimeError("503"), RuntimeError("429")])
    slept: list[float] = []
    assert with_retries(attempt, _classify, RetryPolicy(max_retries=2), "t", slept.append) == "ok"
    assert len(calls) == 3 and slept == [0.0, 0.0]


def test_gives_up_after_max_retries_raising_the_typed_error() -> None:
    attempt, calls = _flaky([RuntimeError("503")] * 5)
    with pytest.raises(ServiceError) as info:
        with_retries(attempt, _classify, RetryPolicy(max_retries=2), "t", lambda _: None)
    assert len(calls) == 3
    # chained to nothing: an SDK error may hold the key (see tests/hosted secrets tests)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_a_final_failure_is_never_retried() -> None:
    attempt, calls = _flaky([RuntimeError("401")])
    with pytest.raises(ServiceError):
        with_retries(attempt, _classify, RetryPolicy(max_retries=5), "t", lambda _: None)
    assert len(calls) == 1
