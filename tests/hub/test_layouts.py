"""The per-backend choice of files, on the catalog repos' recorded file lists (layouts.json):
no network. Each catalog hub id must exist in the record, and each choice must be what
its backend loads, and no more."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from slmkit import catalog, errors
from slmkit.catalog import HubArtifact, hubfiles

LAYOUTS = json.loads(Path(__file__).with_name("layouts.json").read_text())["repos"]
ARTIFACTS = [
    pytest.param(spec.alias, fmt, artifact, id=f"{spec.alias}-{fmt}")
    for spec in catalog.all_models()
    for fmt, artifact in sorted(spec.hub.items())
]
#: Expected ONNX variant per provider (None: the repo has none for it, as recorded).
ONNX_CHOICES = {
    "microsoft/Phi-3-mini-4k-instruct-onnx": {
        "cpu": "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4",
        "cuda": "cuda/cuda-int4-rtn-block-32",
        "dml": "directml/directml-int4-awq-block-128",
    },
    "microsoft/Phi-3.5-mini-instruct-onnx": {
        "cpu": "cpu_and_mobile/cpu-int4-awq-block-128-acc-level-4",
        "cuda": "gpu/gpu-int4-awq-block-128",
        "dml": None,
    },
}
#: ONNX repos in the catalog that hold no genai_config.json (a transformers.js layout) as
#: recorded: ONNX Runtime GenAI cannot load them, and pulling them says so.
NOT_GENAI = {"onnx-community/gemma-3-1b-it-ONNX-GQA"}


def files(repo: str) -> list[str]:
    return list(LAYOUTS[repo]["files"])


def write_configs(root: Path, repo: str) -> None:
    """The repo's genai_config.json files, with their recorded providers, in place."""
    for path, providers in LAYOUTS[repo].get("genai_providers", {}).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        decoder = {"session_options": {"provider_options": providers}}
        target.write_text(json.dumps({"model": {"context_length": 4096, "decoder": decoder}}))


@pytest.mark.parametrize(("alias", "fmt", "artifact"), ARTIFACTS)
def test_every_catalog_hub_id_is_in_the_record(alias: str, fmt: str, artifact: HubArtifact) -> None:
    assert artifact.repo in LAYOUTS, f"{alias}: record {artifact.repo}'s file list"
    if artifact.filename:
        assert artifact.filename in files(artifact.repo)


@pytest.mark.parametrize(
    ("alias", "fmt", "artifact"), [a for a in ARTIFACTS if a.values[1] == "gguf"]
)
def test_gguf_is_one_file_of_a_repo_with_many(alias: str, fmt: str, artifact: HubArtifact) -> None:
    paths = files(artifact.repo)
    chosen = hubfiles.files_for("gguf", artifact, paths)
    assert chosen == [artifact.filename]
    assert sum(p.endswith(".gguf") for p in paths) > 1


@pytest.mark.parametrize(
    ("alias", "fmt", "artifact"), [a for a in ARTIFACTS if a.values[1] in ("hf", "mlx")]
)
def test_checkpoint_is_weights_config_and_tokenizer_only(
    alias: str, fmt: str, artifact: HubArtifact
) -> None:
    paths = files(artifact.repo)
    chosen = hubfiles.files_for(fmt, artifact, paths)
    assert "config.json" in chosen and "tokenizer_config.json" in chosen
    weights = [p for p in paths if p.endswith(".safetensors")]
    assert weights and set(weights) <= set(chosen)
    if "model.safetensors.index.json" in paths:
        assert "model.safetensors.index.json" in chosen
    assert not [p for p in chosen if p.startswith("original/") or p.endswith((".gguf", ".pth"))]
    assert ".gitattributes" not in chosen


@pytest.mark.parametrize(
    ("alias", "fmt", "artifact"), [a for a in ARTIFACTS if a.values[1] == "openvino"]
)
def test_openvino_ir_comes_with_its_tokenizers(alias: str, fmt: str, artifact: HubArtifact) -> None:
    chosen = hubfiles.files_for("openvino", artifact, files(artifact.repo))
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
    ):
        assert name in chosen


@pytest.mark.parametrize(
    ("repo", "provider", "expected"),
    [(repo, p, folder) for repo, table in ONNX_CHOICES.items() for p, folder in table.items()],
)
def test_onnx_fetches_only_the_variant_for_the_provider(
    tmp_path: Path, repo: str, provider: str, expected: str | None
) -> None:
    write_configs(tmp_path, repo)
    if expected is None:
        with pytest.raises(
            errors.ModelNotFound, match=f"no variant for execution provider '{provider}'"
        ):
            hubfiles.onnx_variant(tmp_path, provider, repo)
        return
    variant = hubfiles.onnx_variant(tmp_path, provider, repo)
    assert variant == expected
    chosen = hubfiles.files_for("onnx", HubArtifact(repo), files(repo), variant)
    assert all(p.startswith(variant + "/") for p in chosen)
    names = {PurePosixPath(p).name for p in chosen}
    assert "genai_config.json" in names and "tokenizer.json" in names
    assert any(n.endswith(".onnx") for n in names) and any(n.endswith(".onnx.data") for n in names)
    others = [
        p for p in files(repo) if p.endswith(".onnx.data") and not p.startswith(variant + "/")
    ]
    assert others and not set(others) & set(chosen)


def test_every_catalog_onnx_repo_is_either_a_genai_model_or_known_not_to_be() -> None:
    repos = {s.hub["onnx"].repo for s in catalog.all_models() if "onnx" in s.hub}
    for repo in repos:
        has_configs = bool(hubfiles.onnx_variant_configs(files(repo)))
        assert has_configs == (repo not in NOT_GENAI), repo
        assert has_configs == (repo in ONNX_CHOICES), repo


def test_split_gguf_brings_all_its_parts() -> None:
    paths = [f"m-q4_k_m-0000{i}-of-00003.gguf" for i in (1, 2, 3)] + ["m-q8_0.gguf"]
    assert hubfiles.files_for("gguf", HubArtifact("o/m"), paths) == sorted(paths[:3])


def test_several_ggufs_without_a_q4_k_m_ask_for_one() -> None:
    with pytest.raises(errors.ModelNotFound, match="several GGUF files"):
        hubfiles.files_for("gguf", HubArtifact("o/m"), ["a-q8_0.gguf", "a-f16.gguf"])


def test_pickled_weights_are_skipped_only_when_safetensors_exist() -> None:
    both = ["config.json", "model.safetensors", "pytorch_model.bin"]
    assert hubfiles.files_for("hf", HubArtifact("o/m"), both) == [
        "config.json",
        "model.safetensors",
    ]
    only_bin = ["config.json", "pytorch_model.bin"]
    assert hubfiles.files_for("hf", HubArtifact("o/m"), only_bin) == only_bin


def test_a_named_file_missing_from_the_repo_is_not_found() -> None:
    with pytest.raises(errors.ModelNotFound, match="no file x.gguf"):
        hubfiles.files_for("gguf", HubArtifact("o/m", "x.gguf"), ["y.gguf"])
