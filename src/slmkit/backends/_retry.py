"""Retries for hosted calls: one layer, owned by slmkit, so SDK retries never multiply.

What is retried: connection errors, timeouts, and HTTP 408, 409, 429 and 5xx. Other 4xx
are the caller's mistake and fail at once. Waits grow exponentially with full jitter,
and a server's ``Retry-After`` (seconds or an HTTP-date) is honoured up to a cap.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

__all__ = [
    "Failure",
    "RetryPolicy",
    "parse_retry_after",
    "retryable_status",
    "with_retries",
    "with_retries_async",
]

log = logging.getLogger("slmkit.hosted")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    """True for the statuses worth another try: 408, 409, 429 and every 5xx."""
    return status in RETRYABLE_STATUS or 500 <= status <= 599


def parse_retry_after(
    headers: Mapping[str, str] | None, now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date), or None.

    ``retry-after-ms`` (sent by OpenAI and Azure) wins when present.
    """
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now() if now is not None else datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class Failure:
    """A failed attempt, normalised: what happened and whether another try may help."""

    error: Exception
    retryable: bool
    retry_after: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait between tries."""

    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    #: A Retry-After longer than this is not waited for: the error is raised instead.
    retry_after_max: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to sleep before retry number ``attempt`` (1-based); None: give up."""
        if retry_after is not None:
            return retry_after if retry_after <= self.retry_after_max else None
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(0.0, ceiling)


def with_retries(
    attempt: Callable[[], T],
    classify: Callable[[Exception], Failure],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` until it succeeds, the failure is final, or retries run out.

    ``classify`` turns an SDK exception into a :class:`Failure` whose ``error`` is the
    slmkit error raised when giving up. It is raised outside the handler, chained to
    nothing: an SDK exception may hold the key (a server echoing it in a 401 body), and
    a chain would print it in every traceback and ``logging.exception``.
    """
    tries = 0
    while True:
        try:
            return attempt()
        except Exception as exc:
            failure = classify(exc)
        tries += 1
        sleep(_wait_or_raise(failure, tries, policy, what))


async def with_retries_async(
    attempt: Callable[[], Awaitable[T]],
    classify: Callable[[Exception], Failure],
    policy: RetryPolicy,
    what: str,
) -> T:
    """:func:`with_retries` for an async attempt; waits without blocking the loop."""
    tries = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            failure = classify(exc)
        tries += 1
        await asyncio.sleep(_wait_or_raise(failure, tries, policy, what))


def _wait_or_raise(failure: Failure, tries: int, policy: RetryPolicy, what: str) -> float:
    """Seconds to wait before the next try, or raise the final slmkit error (unchained:
    call this outside the except block)."""
    wait = policy.delay(tries, failure.retry_after) if failure.retryable else None
    if wait is None or tries > policy.max_retries:
        raise failure.error
    log.info(
        "%s failed (%s); retry %d of %d in %.2fs",
        what,
        type(failure.error).__name__,
        tries,
        policy.max_retries,
        wait,
    )
    return wait
