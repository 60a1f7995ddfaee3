"""Backend ``mlx``: MLX through mlx-lm, on the real offline models (Linux CPU here).

The contract suite covers generation behaviour; this file covers what is MLX's own:
platform checks, artifact resolution, options, the converter target and sampling.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import slmkit
from slmkit import errors
from slmkit._llm import LLM
from slmkit.backends.mlx import MlxBackend
from slmkit.convert import cached_artifact, convert

pytestmark = pytest.mark.skipif(
    not MlxBackend.check().installed,
    reason='the mlx extra is not installed: pip install "slmkit[mlx]"',
)

BASE_MODEL = "gemma-3-270m"
PROMPT = "Question: What is the capital of France?\nAnswer:"
OPEN_PROMPT = "Once upon a time, in a small village by the sea, there lived"


@pytest.fixture(scope="module")
def artifact() -> Path:
    """The 4-bit MLX artifact of the base model (converted once, then cached)."""
    return convert(BASE_MODEL, to="mlx")


@pytest.fixture(scope="module")
def llm(artifact: Path) -> Iterator[LLM]:
    with slmkit.load(BASE_MODEL, backend="mlx") as loaded:
        yield loaded


def test_check_reports_the_platform_build_without_importing_mlx() -> None:
    code = (
        "import sys; from slmkit.backends.mlx import MlxBackend; a = MlxBackend.check(); "
        "print(a.usable, a.reason); "
        "print(any(m == 'mlx' or m.startswith(('mlx.', 'mlx_lm')) for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[1] == "False", "check() imported mlx"
    if sys.platform == "linux":
        assert out[0].startswith("True Linux")


@pytest.mark.parametrize(
    ("system", "machine", "usable", "reason"),
    [
        ("Darwin", "arm64", True, "Metal (Apple silicon)"),
        ("Darwin", "x86_64", False, "MLX needs Apple silicon; this Mac is x86_64"),
        ("Windows", "AMD64", False, "MLX has no build for Windows"),
        ("Linux", "x86_64", True, "Linux CPU build (mlx-cpu): correct but slow"),
    ],
)
def test_check_tells_each_platform_the_truth(
    monkeypatch: pytest.MonkeyPatch, system: str, machine: str, usable: bool, reason: str
) -> None:
    import slmkit.backends.mlx as module

    monkeypatch.setattr("platform.system", lambda: system)
    monkeypatch.setattr("platform.machine", lambda: machine)
    monkeypatch.setattr(module, "has_distribution", lambda dist: dist in ("mlx", "mlx-cpu"))
    availability = MlxBackend.check()
    assert (availability.usable, availability.reason) == (usable, reason)


def test_linux_without_a_native_build_names_mlx_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import slmkit.backends.mlx as module

    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr(module, "has_distribution", lambda dist: dist == "mlx")
    availability = MlxBackend.check()
    assert not availability.installed
    assert availability.reason == 'needs mlx-cpu: pip install "slmkit[mlx]"'
    with pytest.raises(errors.BackendNotInstalled, match="mlx-cpu"):
        MlxBackend.require()


def test_converted_artifact_is_4_bit_mlx_and_cached(artifact: Path) -> None:
    config = json.loads((artifact / "config.json").read_text())
    assert config["quantization"]["bits"] == 4
    assert list(artifact.glob("*.safetensors"))
    assert cached_artifact(BASE_MODEL, to="mlx") == artifact
    assert artifact.name == "mlx-4bit"


@pytest.mark.parametrize("bits", [3, "four", True])
def test_convert_refuses_other_bit_widths(bits: object) -> None:
    with pytest.raises(errors.InvalidRequest, match="bits"):
        convert(BASE_MODEL, to="mlx", bits=bits)


def test_alias_loads_the_converted_artifact(llm: LLM, artifact: Path) -> None:
    assert llm.info.artifact == str(artifact)
    assert llm.info.device == ("cpu" if sys.platform == "linux" else "metal")
    assert llm.info.context_length == 4096  # the catalog's default window


def test_folder_path_loads_the_same_model(llm: LLM, artifact: Path) -> None:
    with slmkit.load(str(artifact), backend="mlx") as by_path:
        assert by_path.info.artifact == str(artifact)
        text = by_path.generate(PROMPT, max_tokens=4).text
    assert text == llm.generate(PROMPT, max_tokens=4).text


def test_hub_id_is_found_in_the_hf_cache(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "models--mlx-community--gemma-test-4bit" / "snapshots" / "abc123"
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(artifact, target_is_directory=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with slmkit.load("mlx-community/gemma-test-4bit", backend="mlx") as llm:
        assert llm.info.artifact == str(snapshot)


def test_hub_id_missing_offline_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        errors.ModelNotFound, match="slmkit pull mlx-community/nothing-4bit --backend mlx"
    ):
        slmkit.load("mlx-community/nothing-4bit", backend="mlx")


def test_unconverted_bit_width_names_the_convert_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if cached_artifact(BASE_MODEL, to="mlx", bits=8) is not None:
        pytest.skip("an 8-bit artifact is already cached here")
    monkeypatch.setenv("SLMKIT_AUTO_CONVERT", "0")  # else it converts, as the rule says
    with pytest.raises(
        errors.ModelNotFound, match=r"slmkit convert gemma-3-270m --to mlx --bits 8"
    ):
        slmkit.load(BASE_MODEL, backend="mlx", bits=8)


def test_gguf_file_is_refused_with_the_fix() -> None:
    from slmkit.catalog import get
    from slmkit.catalog.offline import assemble

    packaged = get(BASE_MODEL).packaged
    assert packaged is not None
    with pytest.raises(errors.InvalidModelFile, match="--to mlx"):
        slmkit.load(str(assemble(packaged)), backend="mlx")


def test_unknown_option_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="has no option 'n_threads'"):
        slmkit.load(BASE_MODEL, backend="mlx", n_threads=2)


def test_context_length_beyond_the_model_is_refused(artifact: Path) -> None:
    with pytest.raises(errors.InvalidRequest, match="context_length"):
        slmkit.load(str(artifact), backend="mlx", context_length=10_000_000)


def test_prefix_reuse_is_refused_for_sliding_window_layers(llm: LLM) -> None:
    """Gemma 3's RotatingKVCache layers cannot be cut back to a shared prefix (the check
    load(prefix_reuse=True) makes, on the loaded model rather than a second load)."""
    with pytest.raises(errors.UnsupportedFeature, match="sliding-window"):
        llm._engine._prefix_pool(4)


def test_seed_makes_sampling_repeatable_and_other_seeds_differ(llm: LLM) -> None:
    runs = [
        llm.generate(OPEN_PROMPT, max_tokens=8, temperature=1.5, seed=seed).text
        for seed in (7, 7, 8, 9)
    ]
    assert runs[0] == runs[1]
    assert len(set(runs)) > 1


def test_top_k_one_is_greedy(llm: LLM) -> None:
    greedy = llm.generate(OPEN_PROMPT, max_tokens=6).text
    sampled = llm.generate(OPEN_PROMPT, max_tokens=6, temperature=1.0, top_k=1, seed=5).text
    assert sampled == greedy


def test_repetition_penalty_changes_greedy_output(llm: LLM) -> None:
    prompt = "one two one two one two one two"
    plain = llm.generate(prompt, max_tokens=6).text
    penalised = llm.generate(prompt, max_tokens=6, repetition_penalty=2.0).text
    assert plain != penalised


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux build reports its CPU device")
def test_backends_listing_says_cpu_on_linux() -> None:
    from slmkit import registry

    row = next(s for s in registry.backend_statuses() if s.name == "mlx")
    assert row.usable
    assert "CPU" in row.reason


def test_direct_decode_gives_mlx_lm_s_own_greedy_tokens(llm: LLM) -> None:
    from slmkit.backends.mlx import direct_decode

    engine = llm._engine
    prompt_ids = engine.tokenize(PROMPT, add_special=True)  # type: ignore[attr-defined]
    tokens = list(direct_decode(engine, prompt_ids, 5))  # type: ignore[arg-type]
    assert len(tokens) == 5
    assert engine.decode(tokens) == llm.generate(PROMPT, max_tokens=5).text  # type: ignore[attr-defined]
