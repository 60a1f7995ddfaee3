"""Fixtures for pulling from a hub: a fake hub on 127.0.0.1 and a child-process runner.

Every call runs in a child interpreter with its own HF_* environment (huggingface_hub
reads it at import) and its own empty HF cache; nothing can reach the real hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import slmkit

from .fake_hub import FakeHub

CHILD = Path(__file__).with_name("child.py")
SRC = Path(slmkit.__file__).resolve().parents[1]


@dataclass
class Outcome:
    ok: Any
    error: str | None
    bases: list[str]
    message: str
    stderr: str


@dataclass
class Client:
    """Runs slmkit calls against one hub with one HF cache."""

    hub: FakeHub
    cache: Path
    env: dict[str, str]

    def run(self, action: dict[str, Any], **env: str) -> Outcome:
        proc = subprocess.run(
            [sys.executable, str(CHILD), json.dumps(action)],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        data = json.loads(lines[-1])
        return Outcome(
            data.get("ok"),
            data.get("error"),
            data.get("bases", []),
            data.get("message", ""),
            proc.stderr,
        )

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "slmkit", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    def pull(self, *args: Any, **env: str) -> Outcome:
        return self.run({"do": "pull", "args": list(args)}, **env)

    def repo_dir(self, repo: str) -> Path:
        return self.cache / ("models--" + repo.replace("/", "--"))

    def cached_files(self, repo: str) -> list[str]:
        """Files in the repo's snapshots, relative to the snapshot, sorted."""
        snapshots = self.repo_dir(repo) / "snapshots"
        if not snapshots.is_dir():
            return []
        return sorted(
            p.relative_to(s).as_posix()
            for s in snapshots.iterdir()
            for p in s.rglob("*")
            if p.is_file()
        )


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    fake = FakeHub().start()
    yield fake
    fake.stop()


def client_for(hub: FakeHub, cache: Path) -> Client:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_CACHE=str(cache),
        HF_HOME=str(cache.parent / "hf-home"),  # no token file of the machine's user
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1",
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    )
    env.pop("TRANSFORMERS_OFFLINE", None)
    return Client(hub, cache, env)


@pytest.fixture
def client(hub: FakeHub, tmp_path: Path) -> Client:
    return client_for(hub, tmp_path / "hub-cache")
