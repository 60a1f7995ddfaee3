"""backend="auto" on this machine: the ranking's first usable backend, fallback only under auto."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import slmkit
from slmkit.errors import SlmkitError
from slmkit.paths import cache_dir
from slmkit.ranking import rank_backends

GGUF = cache_dir("models", "gemma-3-270m-q4_k_m.gguf")
needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='llama.cpp extra not installed: pip install "slmkit[llamacpp]"',
)


def first_usable(model: str) -> str:
    return next(r.name for r in rank_backends(model=model, measured=False) if r.usable)


def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *shared: str) -> Path:
    """A cache without stored measurements that still sees the ``shared`` folders."""
    for name in shared:
        folder = cache_dir(name)
        if folder.is_dir():
            (tmp_path / name).symlink_to(folder, target_is_directory=True)
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No stored measurement (the rule table decides); models and conversions as they are."""
    return private_cache(tmp_path, monkeypatch, "models", "converted")


@pytest.fixture
def unconverted_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing converted yet: backends that need a converted artifact cannot load."""
    return private_cache(tmp_path, monkeypatch, "models")


@needs_llamacpp
def test_auto_loads_the_first_usable_backend_and_says_why(own_cache: Path) -> None:
    usable = [r.name for r in rank_backends(model="gemma-3-270m", measured=False) if r.usable]
    with slmkit.load("gemma-3-270m", backend="auto") as llm:
        assert llm.info.reason.startswith("auto: ")
        assert len(llm.info.reason) > len("auto: ")
        # The first usable one, or a later one after saying why each before it did not load
        # (an unconverted artifact is not converted by auto).
        passed = usable[: usable.index(llm.info.backend)]
        for name in passed:
            assert f"{name} (" in llm.info.reason.partition("fell back past ")[2], name


@needs_llamacpp
def test_auto_falls_back_past_a_backend_that_cannot_read_the_model_and_says_so(
    own_cache: Path,
) -> None:
    if not GGUF.is_file():
        pytest.skip("the gemma-3-270m GGUF is not assembled yet")
    if first_usable(str(GGUF)) != "onnx":
        pytest.skip("needs the onnx extra installed: it ranks above llama.cpp and reads no GGUF")
    with slmkit.load(str(GGUF), backend="auto") as llm:
        assert llm.info.backend != "onnx"
        assert "fell back past onnx" in llm.info.reason


@needs_llamacpp
def test_auto_falls_back_to_the_gguf_when_the_model_is_not_converted_and_says_how(
    unconverted_cache: Path,
) -> None:
    from slmkit import registry

    first = first_usable("gemma-3-270m")
    if registry.get_backend(first).artifact_format == "gguf":
        pytest.skip("needs a backend extra that ranks above llama.cpp (onnx, openvino)")
    with slmkit.load("gemma-3-270m", backend="auto") as llm:
        assert llm.info.backend != first
        assert f"fell back past {first}" in llm.info.reason
        assert "slmkit convert" in llm.info.reason


@needs_llamacpp
def test_explicit_backend_never_falls_back(own_cache: Path) -> None:
    if importlib.util.find_spec("onnxruntime_genai") is None or not GGUF.is_file():
        pytest.skip('needs the onnx extra: pip install "slmkit[onnx]"')
    with pytest.raises(SlmkitError):
        slmkit.load(str(GGUF), backend="onnx")
