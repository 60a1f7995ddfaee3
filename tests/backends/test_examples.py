"""Every example runs as it is (an example that no longer runs is a bug)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama.cpp extra not installed: the examples run on it")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("script", "expect"),
    [("quickstart.py", "paris"), ("async_and_stops.py", "paris")],
)
def test_example_runs(script: str, expect: str) -> None:
    env = {**os.environ, "SLMKIT_BACKEND": "llamacpp"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout.lower()
