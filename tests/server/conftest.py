"""Fixtures for `slmkit serve`: the real command as a uvicorn subprocess on 127.0.0.1.

- ``server``: one session-wide `slmkit serve` with an API key, the default instruct model
  (chat, "Paris") and gemma-3-270m (fast raw completions) on llama.cpp, both real offline
  models, ``--max-queue 2``; its log is kept so tests can read what it printed;
- ``ServerProcess``: start another one with other flags (SIGTERM, load failure tests);
- nothing here reaches beyond loopback, and no real API key is in the environment
  (the hosted suite's guards, reused).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import slmkit

from ..hosted.conftest import REAL_ENV, _free_port, no_internet, no_real_credentials

__all__ = ["no_internet", "no_real_credentials"]  # autouse fixtures, active here too

CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
BASE_MODEL = "gemma-3-270m"
API_KEY = "sk-slmkit-test-5c1e7f09b2"
QUESTION = "What is the capital of France? Answer in one word."
CONTEXT_LENGTH = 1024
#: The served models' slmkit.toml: a small context keeps long-prompt tests cheap.
CONFIG = f"[backends.llamacpp]\ncontext_length = {CONTEXT_LENGTH}\n"


def requires(*modules: str, extra: str) -> None:
    """Skip, naming the extra, when a package the test needs is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f'{", ".join(missing)} not installed: pip install "slmkit[{extra}]"')


def requires_models() -> None:
    from slmkit import catalog
    from slmkit.catalog import offline
    from slmkit.errors import ModelNotFound

    for name, extra in ((CHAT_MODEL, "default-model"), (BASE_MODEL, "test-models")):
        spec = catalog.lookup(name)
        assert spec is not None and spec.packaged is not None
        try:
            offline.assemble(spec.packaged)
        except ModelNotFound as exc:
            pytest.skip(f"{extra} extra not installed ({name}): {exc}")


def child_env() -> dict[str, str]:
    """The environment for a child Python: no real keys, and the slmkit these tests import
    (whichever checkout that is) first on its path."""
    environment = {k: v for k, v in os.environ.items() if k not in REAL_ENV}
    source = str(Path(slmkit.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        [source, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environment["NO_PROXY"] = "127.0.0.1,localhost"
    return environment


class ServerProcess:
    """`python -m slmkit serve ARGS` on a free port; output goes to ``log_path``."""

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        config: str = CONFIG,
    ):
        (log_path.parent / "slmkit.toml").write_text(config, encoding="utf-8")
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1"
        self.log_path = log_path
        command = [sys.executable, "-m", "slmkit", "serve", *args]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        environment = {**child_env(), **(env or {})}
        with log_path.open("wb") as log:  # its folder, its slmkit.toml: not the developer's
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                cwd=log_path.parent,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> None:
        """Until /health says 200 (the default model is loaded)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"slmkit serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"slmkit serve was not ready within {timeout} s:\n{self.log()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        return self.process.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    requires("fastapi", "uvicorn", extra="server")
    requires("llama_cpp", extra="llamacpp")
    requires_models()
    log_path = tmp_path_factory.mktemp("slmkit-serve") / "server.log"
    args = [CHAT_MODEL, "--model", BASE_MODEL, "--backend", "llamacpp", "--max-queue", "2"]
    process = ServerProcess(args, log_path, env={"SLMKIT_API_KEY": API_KEY})
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
