"""Finding artifacts in the Hugging Face cache, with HF_HUB_OFFLINE honoured.

The lookup reads the cache layout directly, so it needs no huggingface_hub; a
download is attempted only when huggingface_hub is installed and the hub is allowed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import ModelNotFound
from . import HubArtifact

__all__ = ["hub_cache_dir", "hub_offline", "resolve"]


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _snapshot(repo: str, revision: str = "main") -> Path | None:
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


def find_cached(artifact: HubArtifact) -> Path | None:
    """The cached file or folder for ``artifact``, or None."""
    snapshot = _snapshot(artifact.repo)
    if snapshot is None:
        return None
    path = snapshot / artifact.subfolder if artifact.subfolder else snapshot
    if artifact.filename:
        path = path / artifact.filename
    return path if path.exists() else None


def resolve(artifact: HubArtifact, what: str) -> Path:
    """The cached artifact, downloading it when allowed; ModelNotFound with the fix otherwise."""
    cached = find_cached(artifact)
    if cached is not None:
        return cached
    where = artifact.repo + (f"/{artifact.subfolder}" if artifact.subfolder else "")
    if artifact.filename:
        where += f"/{artifact.filename}"
    if not hub_offline() and importlib.util.find_spec("huggingface_hub") is not None:
        return _download(artifact, where)
    reason = "HF_HUB_OFFLINE is set" if hub_offline() else "huggingface_hub is not installed"
    raise ModelNotFound(
        f"{what} is not in the Hugging Face cache ({hub_cache_dir()}) and {reason}: "
        f"run `hf download {artifact.repo}` where the hub is reachable, or pass a local path"
    )


def _download(artifact: HubArtifact, where: str) -> Path:
    import huggingface_hub

    try:
        if artifact.filename:
            name = (
                f"{artifact.subfolder}/{artifact.filename}"
                if artifact.subfolder
                else artifact.filename
            )
            return Path(huggingface_hub.hf_hub_download(artifact.repo, name))
        patterns = [f"{artifact.subfolder}/*"] if artifact.subfolder else None
        root = Path(huggingface_hub.snapshot_download(artifact.repo, allow_patterns=patterns))
        return root / artifact.subfolder if artifact.subfolder else root
    except Exception as exc:  # network, auth, missing repo: all mean "not available"
        raise ModelNotFound(
            f"could not download {where} from the Hugging Face hub ({type(exc).__name__}); "
            "check the name and your network, or set HF_TOKEN for gated models"
        ) from exc
