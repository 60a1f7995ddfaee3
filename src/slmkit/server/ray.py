"""The app of ``slmkit serve`` as a Ray Serve deployment: replicas, autoscaling, a cluster
(``pip install "slmkit[server,ray]"``).

    >>> from slmkit.server.ray import build_app, run
    >>> app = build_app("qwen2.5-coder-0.5b-instruct", backend="llamacpp", replicas=2)
    >>> run(app, port=8000)                 # what `slmkit serve --ray` does; or serve.run(app)

Each replica builds the very app :func:`~slmkit.server.create_app` builds and loads its
models there, once, before Ray routes a request to it. Ray lets a replica hold more requests
than its admission queue takes, so an overloaded replica still answers the server's own 503
(OpenAI's error body, ``Retry-After``); every answer names its replica in an
``x-slmkit-replica`` header, and ``/metrics`` in a ``replica`` label.
"""

from __future__ import annotations

import importlib.util
import logging
import logging.config
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import find_config_file
from ..errors import BackendNotInstalled
from .app import create_app
from .errors import APIError
from .run import log_config

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None:
    raise BackendNotInstalled("ray", "ray[serve]", "ray")

import ray
from ray import serve

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application

__all__ = ["build_app", "replica_range", "run"]

log = logging.getLogger("slmkit.server")

#: Environment a replica must not see in Ray's dashboard (runtime_env is shown there).
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
#: Retry-After of Ray's own refusal, when even its router queue is full (no replica free).
ROUTER_RETRY_AFTER_S = 1
SIGNALS = (signal.SIGINT, signal.SIGTERM)
AUTOSCALE_RULE = "autoscale MIN:MAX replicas with 0 <= MIN <= MAX and MAX >= 1"


@serve.ingress()
class Replica:
    """One Ray Serve replica: ``create_app(models, **options)``, its default model loaded."""

    def __init__(self, models: Any, options: dict[str, Any]) -> None:
        self.models, self.options = models, options

    async def __serve_build_asgi_app__(self) -> FastAPI:
        """Ray calls this once per replica, before the replica takes requests."""
        replica = serve.get_replica_context().replica_tag
        app = create_app(self.models, replica=replica, **self.options)
        served = app.state.pool.default
        try:
            await served.get()  # a replica is ready when its model is, not before
        except APIError:
            assert served.error is not None
            raise served.error from None
        log.info("replica %s ready", replica)
        return app


def build_app(
    models: str | Sequence[str] | Mapping[str, str],
    *,
    backend: str | None = None,
    load_options: Mapping[str, Any] | None = None,
    api_key: str | None = None,
    max_queue: int = 32,
    parallel: int = 1,
    cors_origins: Sequence[str] = (),
    replicas: int = 1,
    autoscale: tuple[int, int] | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    name: str = "slmkit",
) -> Application:
    """The Ray Serve application of ``slmkit serve`` for ``models`` (names, loaded per replica).

    ``backend``, ``load_options``, ``api_key``, ``max_queue``, ``parallel`` and
    ``cors_origins`` mean what they mean for :func:`~slmkit.server.create_app`, per replica.
    ``replicas`` fixed replicas, or ``autoscale=(min, max)``: Ray adds a replica while they
    average more than ``parallel`` requests each and removes one when idle. Each replica
    reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs of the cluster (Ray's
    ``ray_actor_options``). Replicas read the configuration this process sees: its
    ``SLMKIT_*`` variables and the config file found from here (``SLMKIT_CONFIG``).
    """
    if isinstance(models, str):
        models = [models]
    named = models.values() if isinstance(models, Mapping) else models
    if not all(isinstance(model, str) for model in named):
        raise TypeError("a Ray deployment loads its models by name in each replica; pass names")
    if replicas < 1 or num_cpus < 0 or num_gpus < 0:
        raise ValueError("replicas must be >= 1, num_cpus and num_gpus >= 0")
    if max_queue < 0 or parallel < 1:
        raise ValueError("max_queue must be >= 0 and parallel >= 1")
    if autoscale is not None and not 0 <= autoscale[0] <= autoscale[1] >= 1:
        raise ValueError(AUTOSCALE_RULE)
    holds = parallel + max_queue  # what one replica's admission queue takes
    scaling: dict[str, Any] = (
        {"num_replicas": replicas}
        if autoscale is None
        else {
            "autoscaling_config": {
                "min_replicas": autoscale[0],
                "max_replicas": autoscale[1],
                "target_ongoing_requests": parallel,
            }
        }
    )
    deployment = serve.deployment(
        name=name,
        # Twice what admission takes: the surplus reaches the replica and gets its 503.
        max_ongoing_requests=2 * holds,
        # Ray's router queues a burst while it assigns replicas, even when they have room: it
        # takes as many as all replicas can hold, so those reach a replica (and its JSON 503).
        max_queued_requests=2 * holds * (replicas if autoscale is None else autoscale[1]),
        backpressure_config={"status_code": 503, "retry_after_s": ROUTER_RETRY_AFTER_S},
        ray_actor_options={
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "runtime_env": {"env_vars": _replica_environment()},
        },
        **scaling,
    )(Replica)
    options = {
        "api_key": api_key,
        "max_queue": max_queue,
        "parallel": parallel,
        "cors_origins": tuple(cors_origins),
        "backend": backend,
        "load_options": dict(load_options or {}),
    }
    served = dict(models) if isinstance(models, Mapping) else list(models)
    return deployment.bind(served, options)


def replica_range(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` (``--autoscale``) as ``(min, max)``; ValueError saying the rule if not."""
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (-1, -1)
    if not sep or not 0 <= bounds[0] <= bounds[1] >= 1:
        raise ValueError(f"{text!r}: {AUTOSCALE_RULE}")
    return bounds


def _replica_environment() -> dict[str, str]:
    """``SLMKIT_*`` of this process (secrets left out) and the config file found from here."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.startswith("SLMKIT_") and not any(word in key for word in SECRET_WORDS)
    }
    found = find_config_file()
    if found is not None:
        environment["SLMKIT_CONFIG"] = str(found[0])
    return environment


def run(
    app: Application,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    address: str | None = None,
    name: str = "slmkit",
) -> int:
    """Deploy ``app`` on Ray, serve it until SIGTERM or Ctrl-C, then take it down: exit code.

    ``address``: a Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``; default
    ``RAY_ADDRESS``), else a local cluster (its node registered as 127.0.0.1; Ray's control
    ports still listen on every interface, behind Ray's token auth) is started for this
    process and stopped with it. Ray's proxy listens on ``host:port`` (on a cluster where
    Serve already runs, its proxy keeps the address it has). On the signal the application
    is deleted (Ray lets each replica finish its requests), and Serve shut down if this
    process started the cluster; exit code 1 when the application could not be deployed.
    """
    logging.config.dictConfig(log_config())
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in SIGNALS}
    try:
        serve.start(http_options={"host": host, "port": port})
        try:
            serve.run(app, name=name, route_prefix="/", blocking=False)
        except (RuntimeError, ray.exceptions.RayError) as exc:
            log.error("the Ray Serve application failed to deploy: %s", exc)
            return 1
        cluster = ray.get_runtime_context().gcs_address
        log.info("serving on http://%s:%d/v1 through Ray Serve (cluster %s)", host, port, cluster)
        while not stop.wait(0.5):
            pass
        log.info("stopping: deleting the Ray Serve application %r", name)
        return 0
    finally:
        _take_down(name, owned=not address)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _take_down(name: str, owned: bool) -> None:
    """Our application off the cluster; on a cluster this process started, Serve too."""
    try:
        if owned:
            serve.shutdown()  # type: ignore[no-untyped-call]
        else:
            serve.delete(name)
    finally:
        ray.shutdown()  # type: ignore[no-untyped-call]
