"""Fixtures for the hosted backends. Nothing here may reach the internet.

- every test runs with connections to anything but loopback refused, and with the real
  API-key / endpoint environment variables removed;
- ``llama_server``: llama-cpp-python's own OpenAI-compatible server on the default GGUF,
  started once per session on 127.0.0.1 and always stopped;
- ``faults``: a fault-injecting server of our own (faults.py), one per test.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .faults import FaultServer

HOSTED_BACKENDS = ("openai", "azure", "nim", "github")

#: Variables that would point a test at a real service or hand it a real key.
REAL_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_ADMIN_KEY",
    "OPENAI_CUSTOM_HEADERS",
    "SLMKIT_OPENAI_API_KEY",
    "SLMKIT_OPENAI_BASE_URL",
    "AZURE_AI_CHAT_ENDPOINT",
    "AZURE_AI_CHAT_KEY",
    "AZURE_AI_ENDPOINT",
    "AZURE_AI_API_KEY",
    "NVIDIA_API_KEY",
    "NIM_BASE_URL",
    "GITHUB_TOKEN",
    "GITHUB_MODELS_BASE_URL",
    "SLMKIT_BACKEND",
    "SLMKIT_MODEL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return False
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class InternetBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection and name lookup that is not loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise InternetBlocked(f"test tried to reach {address!r}; tests stay on 127.0.0.1")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback(name):
            raise InternetBlocked(f"test tried to resolve {name!r}; tests stay on 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def no_real_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in REAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)  # no slmkit.toml of the developer's


def requires_hosted_extra() -> None:
    """Skip (naming the extra) when openai or azure-ai-inference is missing."""
    missing = [
        dist
        for module, dist in (("openai", "openai"), ("azure.ai.inference", "azure-ai-inference"))
        if not _importable(module)
    ]
    if missing:
        pytest.skip(
            f'hosted extra not installed ({", ".join(missing)}): pip install "slmkit[hosted]"'
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    requires_hosted_extra()
    with FaultServer() as server:
        yield server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")


def requires_server_extra() -> None:
    """Skip (naming the extra) when llama-cpp-python's server cannot run here."""
    requires_hosted_extra()
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"llama-cpp-python server extra not installed ({', '.join(missing)}): "
            'pip install "slmkit[dev,llamacpp]"'
        )


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of llama-cpp-python's server running the default GGUF."""
    model = default_gguf()
    yield from serve_gguf(model, tmp_path_factory.mktemp("llama-server"), "--n_ctx", "4096")


def default_gguf() -> Path:
    """The default model's GGUF for a server to run; skips without the extras it needs."""
    requires_server_extra()
    from slmkit import catalog
    from slmkit.catalog import offline
    from slmkit.errors import ModelNotFound

    spec = catalog.lookup("default")
    assert spec is not None and spec.packaged is not None
    try:
        return offline.assemble(spec.packaged)
    except ModelNotFound as exc:
        pytest.skip(f"default-model extra not installed: {exc}")


def serve_gguf(model: Path, log_dir: Path, *args: str) -> Iterator[str]:
    """Run llama-cpp-python's server on ``model`` until the generator is closed; yield its URL."""
    port = _free_port()
    log_path = log_dir / "server.log"
    threads = min(4, os.cpu_count() or 2)
    command = [
        sys.executable, "-c", _safe_server_launcher(model, threads),
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_threads", str(threads),
        *args,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(process, url, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _safe_server_launcher(model: Path, threads: int) -> str:
    """``python -m llama_cpp.server`` with the weight-repacking setting slmkit's crash trial
    chose on this machine: on CPUs where the default faults (AMX on some VMs), the stock
    server would die of SIGSEGV on its first request (docs/backends/llamacpp.md)."""
    from slmkit.backends._llamacpp_trial import choose
    from slmkit.gguf import read_gguf

    extra_buffers = choose(read_gguf(model), None, threads).extra_buffers
    return (
        "import runpy, sys, llama_cpp; "
        "from slmkit.backends._llamacpp_trial import llama_class; "
        f"llama_cpp.Llama = llama_class({extra_buffers!r}); "
        "sys.argv[0] = 'llama_cpp.server'; "
        "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
    )


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer on {url} within 180 s")


@pytest.fixture
def server_options() -> dict[str, Any]:
    """Options that make the llama server behave like slmkit's defaults (no repeat penalty)."""
    return {"extra_body": {"repeat_penalty": 1.0}, "timeout": 120, "max_retries": 0}


def backend_options(backend: str, base_url: str, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": base_url, **extra}
    if backend == "azure":
        options.setdefault("api_key", "test-key-azure")
    return options
