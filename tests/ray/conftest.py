"""Fixtures for `slmkit serve --ray`: a local Ray cluster this test session starts on
127.0.0.1 (``num_cpus=2``), and the real command joining it with two replicas of the
default instruct model on llama.cpp (one decode thread each: two replicas, two cores).

- ``cluster``: the Ray cluster, this pytest process its first driver; ``stop()`` takes it
  down and returns the processes of it still alive (there must be none);
- ``server``: `slmkit serve --ray --replicas 2 --ray-address ...` as a subprocess, with an
  API key and ``--max-queue 1``; Ray's proxy on a free port of 127.0.0.1.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..server.conftest import (
    API_KEY,
    CHAT_MODEL,
    CONTEXT_LENGTH,
    ServerProcess,
    no_internet,
    no_real_credentials,
    requires,
    requires_models,
)

__all__ = ["API_KEY", "CHAT_MODEL", "no_internet", "no_real_credentials"]

#: One llama.cpp thread per replica: each replica reserves one of the cluster's two CPUs.
CONFIG = f"[backends.llamacpp]\ncontext_length = {CONTEXT_LENGTH}\nn_threads = 1\n"


class Cluster:
    """A local Ray cluster whose every process runs with ``temp_dir`` on its command line."""

    def __init__(self) -> None:
        import ray

        # Short: Ray puts unix sockets under it (a socket path has ~107 characters at most).
        self.temp_dir = tempfile.mkdtemp(prefix="slmray")
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=self.temp_dir,
        )
        self.address = ray.get_runtime_context().gcs_address
        self.stopped = False

    def replicas(self) -> list[str]:
        """Named actors of Serve's replicas: ``SERVE_REPLICA::app#deployment#id``."""
        import ray

        actors = ray.util.list_named_actors(all_namespaces=True)
        return sorted(a["name"] for a in actors if a["name"].startswith("SERVE_REPLICA::"))

    def processes(self) -> list[str]:
        """Command lines of the processes of this cluster still running."""
        alive = []
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if self.temp_dir in command:
                alive.append(command[:200])
        return alive

    def stop(self, timeout: float = 60) -> list[str]:
        """Serve, then the cluster, down; the processes still alive after ``timeout``."""
        import ray
        from ray import serve

        if not self.stopped:
            self.stopped = True
            serve.shutdown()
            ray.shutdown()
        deadline = time.monotonic() + timeout
        while (alive := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return alive


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    requires("ray", "fastapi", "uvicorn", extra="ray")
    requires("llama_cpp", extra="llamacpp")
    if not Path("/proc").is_dir():
        pytest.skip("these tests read /proc to prove no Ray process is left")
    running = Cluster()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    requires_models()
    log_path = tmp_path_factory.mktemp("slmkit-serve-ray") / "server.log"
    args = [CHAT_MODEL, "--backend", "llamacpp", "--max-queue", "1"]
    args += ["--ray", "--replicas", "2", "--ray-address", cluster.address]
    process = ServerProcess(args, log_path, env={"SLMKIT_API_KEY": API_KEY}, config=CONFIG)
    try:
        process.wait_ready(timeout=300)
        yield process
    finally:
        process.stop()
