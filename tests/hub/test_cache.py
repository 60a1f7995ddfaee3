"""What counts as cached: a snapshot holds a backend's artifact only if it has that
format's files (a repo pulled for one backend may hold only another's). No network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmkit import catalog
from slmkit.catalog import HubArtifact, hfcache

from ..unit.test_catalog import fake_hub_snapshot as snapshot


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_a_snapshot_with_only_a_gguf_is_no_checkpoint(cache: Path) -> None:
    folder = snapshot(cache, "o/m", {"m-q4_k_m.gguf": b"GGUF"})
    assert hfcache.find_cached(HubArtifact("o/m"), "gguf") == folder
    assert hfcache.find_cached(HubArtifact("o/m"), "hf") is None
    assert hfcache.find_cached(HubArtifact("o/m"), "openvino") is None


def test_an_onnx_snapshot_serves_only_the_providers_it_holds(cache: Path) -> None:
    config = {"model": {"decoder": {"session_options": {"provider_options": []}}}}
    folder = snapshot(
        cache, "o/m-onnx", {"cpu-int4/genai_config.json": json.dumps(config).encode()}
    )
    assert hfcache.find_cached(HubArtifact("o/m-onnx"), "onnx", "cpu") == folder
    assert hfcache.find_cached(HubArtifact("o/m-onnx"), "onnx", "cuda") is None


def test_the_pull_command_names_the_alias_when_the_catalog_has_the_artifact() -> None:
    artifact = catalog.get("phi-3-mini").hub["onnx"]
    assert hfcache.pull_command(artifact, "onnx") == "slmkit pull phi-3-mini --backend onnx"
    assert hfcache.pull_command(HubArtifact("o/m"), "gguf") == "slmkit pull o/m --backend llamacpp"
