from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from slmkit import catalog, errors
from slmkit.catalog import HubArtifact, PackagedGGUF, hfcache
from slmkit.catalog.offline import assemble


def test_every_alias_is_unique_and_resolvable() -> None:
    names = [n for s in catalog.all_models() for n in (s.alias, *s.aliases)]
    assert len(names) == len(set(names))
    for name in names:
        assert catalog.lookup(name) is not None


def test_default_model_is_an_offline_chat_model_and_gemma_is_base() -> None:
    default = catalog.get("qwen2.5-coder-0.5b-instruct")
    assert default.is_chat and default.packaged is not None and len(default.packaged.parts) == 6
    assert not catalog.get("gemma-3-270m").is_chat


def test_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(errors.ModelNotFound, match="phi-3.5-mini"):
        catalog.get("gpt-17")


def fake_hub_snapshot(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    """Lay out a repo the way huggingface_hub caches it."""
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / "abc123"
    for name, data in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(data)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("abc123")
    return snapshot


def test_hub_artifact_resolves_from_the_cache_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = catalog.get("phi-3.5-mini")
    snapshot = fake_hub_snapshot(
        tmp_path, spec.hub["gguf"].repo, {spec.hub["gguf"].filename or "": b"x"}
    )
    assert (
        hfcache.resolve(spec.hub["gguf"], "phi") == snapshot / "Phi-3.5-mini-instruct-Q4_K_M.gguf"
    )


def test_subfolder_artifact_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snapshot = fake_hub_snapshot(tmp_path, "org/m-onnx", {"cpu-int4/genai_config.json": b"{}"})
    assert (
        hfcache.find_cached(HubArtifact("org/m-onnx", subfolder="cpu-int4"))
        == snapshot / "cpu-int4"
    )


def test_missing_hub_artifact_offline_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        errors.ModelNotFound, match=r"HF_HUB_OFFLINE is set.*`slmkit pull org/model`"
    ):
        hfcache.resolve(HubArtifact("org/model"), "org/model")


def fake_part_packages(root: Path, payloads: list[bytes]) -> tuple[tuple[str, str, str], ...]:
    parts = []
    for i, payload in enumerate(payloads, 1):
        package = root / f"slmkit_test_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / "p.bin").write_bytes(payload)
        parts.append((f"slmkit_test_part{i}", f"slmkit-test-part{i}", "data/p.bin"))
    return tuple(parts)


def test_offline_parts_are_concatenated_verified_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    payloads = [b"GGUF-first-", b"second"]
    whole = b"".join(payloads)
    packaged = PackagedGGUF(
        "t.gguf",
        hashlib.sha256(whole).hexdigest(),
        len(whole),
        fake_part_packages(tmp_path, payloads),
    )
    path = assemble(packaged)
    assert path.read_bytes() == whole
    stamp_before = path.with_name("t.gguf.verified").read_text()
    assert (
        assemble(packaged) == path and path.with_name("t.gguf.verified").read_text() == stamp_before
    )


def test_damaged_parts_are_an_error_and_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    packaged = PackagedGGUF(
        "t.gguf", "0" * 64, 3, fake_part_packages(tmp_path, [b"abc"]), install="pip install x"
    )
    with pytest.raises(errors.InvalidModelFile, match="sha256.*reinstall"):
        assemble(packaged)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_missing_part_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    packaged = PackagedGGUF(
        "t.gguf",
        "0" * 64,
        3,
        (("slmkit_no_such_part", "no-such-part", "d"),),
        install='pip install "slmkit[default-model]"',
    )
    with pytest.raises(errors.ModelNotFound, match=r"no-such-part.*slmkit\[default-model\]"):
        assemble(packaged)
