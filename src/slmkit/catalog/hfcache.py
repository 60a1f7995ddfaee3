"""Artifacts in the Hugging Face cache, downloaded on first use unless HF_HUB_OFFLINE is set.

The seam backends call: ``find_cached`` looks, ``resolve`` looks and else downloads what
the backend's format needs (catalog.hub, through huggingface_hub). ``fmt`` is the
backend's artifact format ("gguf", "hf", "onnx", "openvino", "mlx"); without it a repo
is taken whole, as before formats were known here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ModelNotDownloaded, ModelNotFound
from . import HubArtifact, hub, hubfiles

__all__ = ["find_cached", "hub_cache_dir", "hub_offline", "pull_command", "resolve"]

#: The file that shows a cached snapshot holds a format's artifact.
_MARKERS = {"hf": "config.json", "mlx": "config.json", "openvino": "openvino_model.xml"}

hub_cache_dir = hub.cache_dir
hub_offline = hub.offline


def find_cached(
    artifact: HubArtifact, fmt: str | None = None, provider: str | None = None
) -> Path | None:
    """The cached file or folder for ``artifact`` (holding what ``fmt`` needs), or None."""
    if artifact.filename:
        return _cached_file(artifact.repo, _in_repo(artifact))
    snapshot = _snapshot(artifact.repo)
    if snapshot is None:
        return None
    path = snapshot / artifact.subfolder if artifact.subfolder else snapshot
    return path if path.exists() and _holds(path, fmt, provider, artifact.repo) else None


def resolve(
    artifact: HubArtifact, what: str, fmt: str | None = None, provider: str | None = None
) -> Path:
    """The cached artifact, else downloaded now (saying so on stderr); offline, a
    ModelNotDownloaded naming the ``slmkit pull`` command to run where the hub is reachable."""
    cached = find_cached(artifact, fmt, provider)
    if cached is not None:
        return cached
    if hub_offline():
        raise ModelNotDownloaded(
            f"{what} is not in the Hugging Face cache ({hub_cache_dir()}) and HF_HUB_OFFLINE "
            f"is set: run `{pull_command(artifact, fmt)}` where the hub is reachable, or pass "
            "a local path"
        )
    return hub.download(artifact, fmt, what, provider)


def pull_command(artifact: HubArtifact, fmt: str | None) -> str:
    """The ``slmkit pull`` command that fetches ``artifact``: by alias when the catalog has it."""
    from . import all_models

    name = next(
        (spec.alias for spec in all_models() if artifact in spec.hub.values()), artifact.repo
    )
    backend = _backend_for(fmt)
    return f"slmkit pull {name}" + (f" --backend {backend}" if backend else "")


def _backend_for(fmt: str | None) -> str | None:
    from .. import registry

    if fmt is None:
        return None
    for name in registry.backend_names():
        try:
            if registry.get_backend(name).artifact_format == fmt:
                return name
        except Exception:  # a broken third-party plugin must not hide the command
            continue
    return None


def _in_repo(artifact: HubArtifact) -> str:
    name = artifact.filename or ""
    return f"{artifact.subfolder.rstrip('/')}/{name}" if artifact.subfolder else name


def _cached_file(repo: str, name: str) -> Path | None:
    if importlib.util.find_spec("huggingface_hub") is not None:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, name, cache_dir=str(hub_cache_dir()))
        return Path(found) if isinstance(found, str) else None
    snapshot = _snapshot(repo)
    return snapshot / name if snapshot is not None and (snapshot / name).is_file() else None


def _snapshot(repo: str, revision: str = "main") -> Path | None:
    """The snapshot folder ``refs/main`` points at (huggingface_hub's layout), else the newest."""
    repo_dir = hub_cache_dir() / ("models--" + repo.replace("/", "--"))
    ref = repo_dir / "refs" / revision
    if ref.is_file():
        snapshot = repo_dir / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = repo_dir / "snapshots"
    if snapshots.is_dir():
        found = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        return found[0] if found else None
    return None


def _holds(path: Path, fmt: str | None, provider: str | None, repo: str) -> bool:
    """Whether a cached snapshot already has ``fmt``'s artifact (a repo pulled for one
    backend may hold only another's files)."""
    if fmt == "gguf":
        return any(path.rglob("*.gguf"))
    if fmt == "onnx":
        try:
            hubfiles.onnx_variant(path, provider or "cpu", repo)
        except ModelNotFound:
            return False
        return True
    marker = _MARKERS.get(fmt or "")
    return marker is None or (path / marker).is_file()
