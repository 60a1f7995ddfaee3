"""`slmkit serve --ray` on a local Ray cluster: two replicas of a real model behind Ray's
proxy, called by the official openai client. The tests run in file order on one server:
answers, spread, overload, a killed replica, then the shutdown that leaves nothing behind."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ..server.conftest import QUESTION, ServerProcess
from .conftest import API_KEY, CHAT_MODEL, Cluster

pytestmark = [
    pytest.mark.timeout(400),
    # ray.serve's own pydantic models, imported by this process to kill a replica.
    pytest.mark.filterwarnings("ignore:Using extra keyword arguments on `Field`"),
]

HEADER = "x-slmkit-replica"
CHAT: dict[str, Any] = {
    "model": CHAT_MODEL,
    "messages": [{"role": "user", "content": QUESTION}],
    "max_tokens": 8,
    "temperature": 0,
}
#: A chat that runs for seconds, to hold a replica's slot while others arrive.
LONG: dict[str, Any] = {
    **CHAT,
    "messages": [{"role": "user", "content": "Count from 1 to 200, comma separated."}],
    "max_tokens": 96,
}


def client(server: ServerProcess) -> Any:
    import openai

    # No retries: a 503 must reach the test as it reached the client.
    return openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=120)


def ask(server: ServerProcess, body: dict[str, Any] = CHAT) -> tuple[str, str]:
    """One chat through Ray's proxy: (answer, replica that gave it)."""
    raw = client(server).chat.completions.with_raw_response.create(**body)
    return raw.parse().choices[0].message.content, raw.headers[HEADER]


def asked_together(server: ServerProcess, count: int, body: dict[str, Any] = CHAT) -> list[Any]:
    """``count`` chats at once: each (answer, replica), or the exception it raised."""

    def one(_: int) -> Any:
        try:
            return ask(server, body)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_answers_are_right_streamed_or_not_and_spread_over_both_replicas(
    server: ServerProcess,
) -> None:
    answers = asked_together(server, 2) + asked_together(server, 2)
    assert all(not isinstance(a, Exception) for a in answers), answers
    assert all("Paris" in text for text, _ in answers), answers
    assert len({replica for _, replica in answers}) == 2, answers

    stream = client(server).chat.completions.create(
        **CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answers[0][0]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_health_and_metrics_through_rays_proxy_name_the_replica(server: ServerProcess) -> None:
    import httpx

    health = httpx.get(f"{server.base}/health", timeout=30)  # open, without the key
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert health.headers[HEADER]
    metrics = httpx.get(
        f"{server.base}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
    )
    assert metrics.status_code == 200
    replica = metrics.headers[HEADER]
    assert re.search(rf'^slmkit_requests_total{{replica="{replica}",', metrics.text, re.M)
    assert httpx.get(f"{server.url}/models", timeout=30).status_code == 401  # key still checked


def test_overload_is_the_servers_503_with_retry_after(server: ServerProcess) -> None:
    import openai

    # Two replicas each run one request and queue one (--max-queue 1): 8 at once overflow.
    results = asked_together(server, 8, LONG)
    refused = [r for r in results if isinstance(r, openai.APIStatusError)]
    answered = [r for r in results if not isinstance(r, Exception)]
    assert refused and answered, results
    assert len(refused) + len(answered) == 8, results
    for error in refused:
        assert error.status_code == 503
        assert int(error.response.headers["retry-after"]) >= 1
        body = error.response.json()["error"]
        assert body["code"] == "queue_full" and body["type"] == "server_error"
        assert error.response.headers[HEADER]  # refused by a replica, not by Ray's router


def test_a_killed_replica_is_replaced_and_requests_are_answered_throughout(
    server: ServerProcess, cluster: Cluster
) -> None:
    import ray

    before = cluster.replicas()
    assert len(before) == 2, before
    victim = before[0]
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)

    deadline = time.monotonic() + 240
    seen: set[str] = set()
    while time.monotonic() < deadline:
        text, replica = ask(server)  # answered while the killed one is away, and after
        assert "Paris" in text
        seen.add(replica)
        fresh = {name.rsplit("#", 1)[1] for name in set(cluster.replicas()) - set(before)}
        if seen & fresh:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no new replica answered within 240 s: {cluster.replicas()}, saw {seen}")
    assert victim not in cluster.replicas()


def test_sigterm_takes_the_deployment_down_and_nothing_is_left_running(
    server: ServerProcess, cluster: Cluster
) -> None:
    assert server.stop() == 0, server.log()[-3000:]
    assert cluster.replicas() == []
    assert "deleting the Ray Serve application" in server.log()
    assert cluster.stop() == []
