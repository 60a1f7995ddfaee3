"""The contract suite: one behavioural spec, run on every installed local backend.

Backends under test: ``SLMKIT_CONTRACT_BACKENDS=llamacpp,onnx`` or, by default, every
registered local backend that is installed and usable here. Each runs the two real
offline models in its own format (converted first when the backend needs it):
``gemma-3-270m`` (base) for generate/stream and the default instruct model for chat.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import slmkit
from slmkit import registry
from slmkit._llm import LLM

BASE_MODEL = "gemma-3-270m"
CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
#: Backends whose engine keeps its prefix (option prefix_reuse, prefix_cache_entries).
REUSING = ("llamacpp", "transformers", "onnx", "openvino", "mlx")
#: Where the default load does not evaluate prompts in full with the model that reuse runs
#: on: openvino reuses by default; onnx reads prompts with its int8 prompt model, which
#: reuse turns off.
FRESH_OPTIONS = {"openvino": {"prefix_reuse": False}, "onnx": {"prefill_model": False}}
#: Set to 1 to run every test in full on MLX's Linux CPU build too (see mlx_cpu_shortened).
MLX_CPU_FULL = "SLMKIT_MLX_CPU_FULL"


def mlx_cpu_shortened(llm: LLM, backend: str) -> bool:
    """True on MLX's Linux CPU build (no SIMD kernels: prompts read at 2-5 tok/s, tokens at
    1-5), where tests that repeat what others prove run shortened or not at all, unless
    SLMKIT_MLX_CPU_FULL=1. On Apple silicon (Metal) everything runs."""
    return backend == "mlx" and llm.info.device == "cpu" and os.environ.get(MLX_CPU_FULL) != "1"


def _install_thirdparty_plugin() -> None:
    """Lay out tests/contract/thirdparty_plugin.py as its own installed distribution with
    a ``slmkit.backends`` entry point, exactly as pip would, and make it importable."""
    root = Path(tempfile.mkdtemp(prefix="slmkit-plugin-"))
    source = Path(__file__).with_name("thirdparty_plugin.py").read_text(encoding="utf-8")
    (root / "slmkit_thirdparty_plugin.py").write_text(source, encoding="utf-8")
    info = root / "slmkit_thirdparty_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: slmkit-thirdparty-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[slmkit.backends]\nthirdparty = slmkit_thirdparty_plugin:ThirdPartyBackend\n"
    )
    sys.path.insert(0, str(root))
    registry.refresh()
    _safe_llama_for_plugins()


def _safe_llama_for_plugins() -> None:
    """The plugin builds ``llama_cpp.Llama`` itself, as any plugin would; on a CPU where
    llama.cpp's default weight repacking faults (AMX on some VMs) that would take the
    test process down. The harness swaps in the setting slmkit's crash trial chose here,
    as tests/hosted does for llama.cpp's server (docs/backends/llamacpp.md)."""
    import llama_cpp

    from slmkit.backends._llamacpp_trial import choose, llama_class
    from slmkit.catalog import get
    from slmkit.catalog.offline import assemble
    from slmkit.gguf import read_gguf
    from slmkit.probe import physical_cores

    gguf = read_gguf(assemble(get(BASE_MODEL).packaged))  # type: ignore[arg-type]
    llama_cpp.Llama = llama_class(choose(gguf, None, physical_cores()).extra_buffers)


def pytest_configure(config: pytest.Config) -> None:
    if "thirdparty" in _local_backends():
        _install_thirdparty_plugin()


def _local_backends() -> list[str]:
    wanted = os.environ.get("SLMKIT_CONTRACT_BACKENDS")
    if wanted:
        return [name.strip() for name in wanted.split(",") if name.strip()]
    names = []
    for status in registry.backend_statuses():
        if status.kind == "local" and status.usable:
            names.append(status.name)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        names = _local_backends()
        metafunc.parametrize(
            "backend",
            names
            or [
                pytest.param(
                    "none", marks=pytest.mark.skip(reason="no local backend extra installed")
                )
            ],
            scope="module",
        )


def _load(model: str, backend: str, **options: object) -> LLM:
    cls = registry.get_backend(backend)
    if cls.artifact_format not in (None, "gguf"):
        slmkit.convert(model, to=cls.artifact_format)  # cached after the first run
    return slmkit.load(model, backend=backend, **options)


@pytest.fixture(scope="module")
def base_llm(backend: str) -> Iterator[LLM]:
    llm = _load(BASE_MODEL, backend)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def chat_llm(backend: str) -> Iterator[LLM]:
    llm = _load(CHAT_MODEL, backend)
    yield llm
    llm.close()
