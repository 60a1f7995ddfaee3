"""Downloads from the Hugging Face hub, through huggingface_hub itself.

The only module that talks to the hub. huggingface_hub decides the cache layout and
reads HF_HOME / HF_HUB_CACHE, HF_TOKEN and HF_ENDPOINT; slmkit adds the choice of files
(catalog.hubfiles), a checksum of every new file against what the hub reports (the
client does not check one), and errors that say what to do. huggingface_hub is imported
only here, inside the functions, when a download or a cache lookup happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    DownloadError,
    HubAccessDenied,
    ModelNotDownloaded,
    ModelNotFound,
    SlmkitError,
)
from . import HubArtifact, hubfiles

__all__ = ["HUB_EXTRA", "HubFile", "cache_dir", "download", "hub_module", "offline"]

HUB_EXTRA = 'pip install "slmkit[hub]"'


@dataclass(frozen=True)
class HubFile:
    """A file of a repo at one commit, with the checksum the hub reports for it."""

    path: str
    size: int | None
    #: sha256 of the content for LFS files; else None and ``blob_id`` (git's sha1) applies.
    sha256: str | None
    blob_id: str | None


def hub_module(what: str) -> Any:
    """huggingface_hub, or ModelNotDownloaded saying how to install it."""
    try:
        return importlib.import_module("huggingface_hub")
    except ImportError:
        raise ModelNotDownloaded(
            f"{what} is not in the Hugging Face cache, and downloading it needs "
            f"huggingface_hub, which is not installed: {HUB_EXTRA}"
        ) from None


def cache_dir() -> Path:
    """The hub cache, read from the environment now (huggingface_hub reads it at import)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.environ[name])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE), read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _endpoint() -> str | None:
    value = os.environ.get("HF_ENDPOINT", "").rstrip("/")
    return value or None


def download(
    artifact: HubArtifact, fmt: str | None, what: str, provider: str | None = None
) -> Path:
    """Download what ``fmt`` needs of ``artifact`` into the cache; the artifact's path there.

    Pinned to the commit the listing came from; each new file is checked against the
    hub's sha256 (LFS) or git blob id before the path is returned.
    """
    hf = hub_module(what)
    endpoint, cache = _endpoint(), cache_dir()
    with translated_errors(artifact.repo, what):
        api = hf.HfApi(endpoint=endpoint)
        info = api.model_info(artifact.repo, revision="main", files_metadata=True)
        commit = str(info.sha)
        listing = {s.rfilename: _hub_file(s) for s in info.siblings or ()}
        variant = None
        if fmt == "onnx" and not artifact.filename and not artifact.subfolder:
            variant = _onnx_variant(hf, artifact.repo, commit, listing, provider or "cpu")
        wanted = hubfiles.files_for(fmt, artifact, list(listing), variant)
        snapshot = cache / f"models--{artifact.repo.replace('/', '--')}" / "snapshots" / commit
        new = [listing[p] for p in wanted if not (snapshot / p).is_file()]
        _announce(artifact.repo, new, variant, cache)
        root = Path(
            hf.snapshot_download(
                artifact.repo,
                revision=commit,
                allow_patterns=wanted,
                cache_dir=str(cache),
                endpoint=endpoint,
                tqdm_class=_progress_class(),
            )
        )
    _verify(root, new, what)
    _point_main_at(root)
    if artifact.filename:
        return root / hubfiles.files_for(fmt, artifact, wanted)[0]
    return root / artifact.subfolder if artifact.subfolder else root


def _point_main_at(snapshot: Path) -> None:
    """refs/main -> the commit just downloaded, as huggingface_hub records a branch (it does
    not when given a commit, and the download is pinned to the listed commit)."""
    refs = snapshot.parent.parent / "refs"
    refs.mkdir(exist_ok=True)
    partial = refs / f".main.{os.getpid()}.tmp"
    partial.write_text(snapshot.name)
    partial.replace(refs / "main")


def _hub_file(sibling: Any) -> HubFile:
    lfs = getattr(sibling, "lfs", None)
    sha256 = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
    return HubFile(sibling.rfilename, sibling.size, sha256, sibling.blob_id)


def _onnx_variant(
    hf: Any, repo: str, commit: str, listing: dict[str, HubFile], provider: str
) -> str:
    """Fetch only the genai_config.json files (a few KB, outside the cache) and let the ONNX
    backend's own rule pick the variant for ``provider`` from them."""
    configs = hubfiles.onnx_variant_configs(list(listing))
    if not configs:
        raise ModelNotFound(
            f"{repo} holds no {hubfiles.GENAI_CONFIG}: it is not an ONNX Runtime GenAI model; "
            "build one with `slmkit convert MODEL --to onnx`"
        )
    with tempfile.TemporaryDirectory(prefix="slmkit-onnx-configs-") as scratch:
        for config in configs:
            hf.hf_hub_download(
                repo, config, revision=commit, local_dir=scratch, endpoint=_endpoint()
            )
        return hubfiles.onnx_variant(Path(scratch), provider, repo)


def _announce(repo: str, new: Sequence[HubFile], variant: str | None, cache: Path) -> None:
    if not new:
        return
    size = sum(f.size or 0 for f in new)
    where = f" ({variant})" if variant else ""
    sys.stderr.write(
        f"slmkit: downloading {len(new)} file{'s' * (len(new) != 1)} ({_human(size)}) of "
        f"{repo}{where} from the hub into {cache}\n"
    )
    sys.stderr.flush()


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _progress_class() -> Any:
    """huggingface_hub's tqdm, shown on a terminal only (not in logs or pipes)."""
    hf_tqdm: Any = importlib.import_module("huggingface_hub.utils").tqdm

    class TerminalProgress(hf_tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not sys.stderr.isatty():
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return TerminalProgress


def _verify(root: Path, new: Sequence[HubFile], what: str) -> None:
    """Every newly downloaded file matches the hub's listed checksum, and was stored under
    it (the ETag), or it leaves the cache."""
    for file in new:
        path = root / file.path
        expected, actual = _checksums(path, file)
        blob = path.resolve()
        stored_as = blob.name if blob != path else expected
        if expected is None or (actual == expected and stored_as == expected):
            continue
        path.unlink(missing_ok=True)
        if blob != path:
            blob.unlink(missing_ok=True)
        raise DownloadError(
            f"{what}: {file.path} does not match the checksum the hub lists for it "
            f"({expected[:12]}...; content {actual[:12]}..., ETag {stored_as and stored_as[:12]}"
            "...); it was removed from the cache: run the command again"
        )


def _checksums(path: Path, file: HubFile) -> tuple[str | None, str]:
    if file.sha256:
        digest = hashlib.sha256()
        expected: str | None = file.sha256
    else:  # git's blob id: sha1 over "blob <size>\0" + content
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {path.stat().st_size}\0".encode())
        expected = file.blob_id
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return expected, digest.hexdigest()


@contextlib.contextmanager
def translated_errors(repo: str, what: str) -> Iterator[None]:
    """huggingface_hub's and the network's errors as slmkit's, each naming the fix."""
    hf = importlib.import_module("huggingface_hub.utils")  # the error names of every version

    try:
        yield
    except SlmkitError:
        raise
    except hf.GatedRepoError as exc:
        raise HubAccessDenied(
            f"{repo} is a gated repo: accept its terms at https://huggingface.co/{repo} and set "
            "HF_TOKEN to a token of that account (huggingface.co/settings/tokens)"
        ) from exc
    except hf.RepositoryNotFoundError as exc:
        raise HubAccessDenied(
            f"{repo} was not found on the hub or is private: check the name, or set HF_TOKEN "
            "to a token that can read it"
        ) from exc
    except hf.RevisionNotFoundError as exc:
        raise ModelNotFound(f"{repo} has no revision 'main' on the hub") from exc
    except hf.OfflineModeIsEnabled as exc:
        raise ModelNotDownloaded(f"{what} is not in the cache and HF_HUB_OFFLINE is set") from exc
    except hf.LocalEntryNotFoundError as exc:  # the client could not reach the hub
        raise _download_failed(repo, what, exc) from exc
    except hf.EntryNotFoundError as exc:
        raise ModelNotFound(f"{what}: a file listed for {repo} is missing on the hub") from exc
    except Exception as exc:  # refused or cut connections, 5xx, a full disk: no partial file kept
        raise _download_failed(repo, what, exc) from exc


def _download_failed(repo: str, what: str, exc: BaseException) -> DownloadError:
    text = str(exc).strip()
    detail = text.splitlines()[0] if text else "no detail"
    return DownloadError(
        f"downloading {what} from {repo} failed ({type(exc).__name__}: {detail}); "
        "check the network (and HF_ENDPOINT if set), then run the command again"
    )
