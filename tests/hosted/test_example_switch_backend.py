"""examples/switch_backend.py runs unchanged on llamacpp and on openai (the local server)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "switch_backend.py"


def _run(env: dict[str, str], cwd: Path) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLMKIT_", "OPENAI_"))}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_example_runs_on_llamacpp_and_on_an_openai_compatible_server(
    llama_server: str, tmp_path: Path
) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip('llamacpp extra not installed: pip install "slmkit[llamacpp]"')
    # The server's default repeat penalty is 1.1; slmkit's (and llama.cpp's library) is 1.0.
    (tmp_path / "slmkit.toml").write_text(
        "[backends.openai]\nextra_body = { repeat_penalty = 1.0 }\n", encoding="utf-8"
    )
    local = _run({"SLMKIT_BACKEND": "llamacpp"}, tmp_path)
    remote = _run({"SLMKIT_BACKEND": "openai", "OPENAI_BASE_URL": llama_server}, tmp_path)
    assert local.splitlines()[0] == "[llamacpp] qwen2.5-coder-0.5b-instruct"
    assert remote.splitlines()[0] == "[openai] qwen2.5-coder-0.5b-instruct"
    for output in (local, remote):
        assert "paris" in output.lower()
        assert "[stop," in output
