"""Which files of a hub repo a backend needs: pure rules over the repo's file list.

No network and no huggingface_hub here, so the rules are tested on recorded file lists.
Formats are the catalog's: "gguf", "hf", "onnx", "openvino", "mlx".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..errors import ModelNotFound
from . import HubArtifact

__all__ = ["GENAI_CONFIG", "choose_gguf", "files_for", "onnx_variant", "onnx_variant_configs"]

from .onnx_layout import GENAI_CONFIG

#: Other runtimes' files that a checkpoint (hf, mlx) never reads.
_NOT_A_CHECKPOINT = (
    "*.gguf",
    "*.onnx",
    "*.onnx.data",
    "*.onnx_data",
    "onnx/*",
    "openvino/*",
    "coreml/*",
    "original/*",  # Llama repos: Meta's own consolidated .pth next to the safetensors
    "*.msgpack",
    "*.h5",
    "*.ot",
    "*.tflite",
    ".gitattributes",
)
#: PyTorch pickles: skipped when the same weights are there as safetensors.
_PICKLED = ("*.bin", "*.pt", "*.pth", "*.ckpt")
_SPLIT_GGUF = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)


def files_for(
    fmt: str | None, artifact: HubArtifact, paths: Sequence[str], variant: str | None = None
) -> list[str]:
    """The files to download for ``artifact`` read as ``fmt``, given the repo's ``paths``.

    ``variant`` is the ONNX folder already chosen (see onnx_variant); "" means the repo root.
    """
    paths = sorted(paths)
    if artifact.filename:
        wanted = _join(artifact.subfolder, artifact.filename)
        if wanted not in paths:
            raise ModelNotFound(f"{artifact.repo} has no file {wanted} on the hub")
        return _with_gguf_parts(wanted, paths)
    if artifact.subfolder:
        paths = [p for p in paths if p.startswith(artifact.subfolder.rstrip("/") + "/")]
        if not paths:
            raise ModelNotFound(f"{artifact.repo} has no folder {artifact.subfolder} on the hub")
    if fmt == "gguf":
        return _with_gguf_parts(choose_gguf(paths, artifact.repo), paths)
    if fmt == "onnx":
        if variant is None:
            raise ValueError("the ONNX variant must be chosen first (onnx_variant)")
        prefix = f"{variant}/" if variant else ""
        inside = [p for p in paths if p.startswith(prefix)]
        return [p for p in inside if not _matches(p, ("*.md", ".gitattributes", "LICENSE*"))]
    if fmt in ("hf", "mlx"):
        kept = [p for p in paths if not _matches(p, _NOT_A_CHECKPOINT)]
        if any(p.endswith(".safetensors") for p in kept):
            kept = [p for p in kept if not _matches(p, _PICKLED)]
        return kept
    return [p for p in paths if p != ".gitattributes"]


def choose_gguf(paths: Sequence[str], what: str) -> str:
    """The GGUF to use among ``paths``: the only one, else the Q4_K_M one.

    Split GGUFs count once, by their first part.
    """
    files = sorted(p for p in paths if p.lower().endswith(".gguf") and not _later_part(p))
    if not files:
        raise ModelNotFound(f"no .gguf file in {what}")
    if len(files) == 1:
        return files[0]
    preferred = [f for f in files if "q4_k_m" in PurePosixPath(f).name.lower()]
    if preferred:
        return preferred[0]
    names = ", ".join(PurePosixPath(f).name for f in files)
    raise ModelNotFound(f"{what} holds several GGUF files ({names}); pass the path of one")


def onnx_variant_configs(paths: Sequence[str]) -> list[str]:
    """The genai_config.json files of a repo: one per ONNX Runtime GenAI variant."""
    configs = sorted(p for p in paths if PurePosixPath(p).name == GENAI_CONFIG)
    return configs


def onnx_variant(configs_root: Path, provider: str, what: str) -> str:
    """The variant folder (relative, "" for the root) that the ONNX backend would pick for
    ``provider``, given a folder holding the repo's genai_config.json files in place."""
    from .onnx_layout import pick_variant  # the backend's own rule, not a copy

    chosen = pick_variant(configs_root, provider, what, hub=True)
    relative = chosen.relative_to(configs_root).as_posix()
    return "" if relative == "." else relative


def _join(subfolder: str | None, filename: str) -> str:
    return f"{subfolder.rstrip('/')}/{filename}" if subfolder else filename


def _matches(path: str, patterns: Sequence[str]) -> bool:
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _later_part(path: str) -> bool:
    match = _SPLIT_GGUF.match(PurePosixPath(path).name)
    return match is not None and int(match["part"]) > 1


def _with_gguf_parts(chosen: str, paths: Sequence[str]) -> list[str]:
    """A split GGUF's first part brings its other parts (llama.cpp opens them together)."""
    match = _SPLIT_GGUF.match(PurePosixPath(chosen).name)
    if match is None:
        return [chosen]
    parent = PurePosixPath(chosen).parent
    parts = [
        str(parent / f"{match['stem']}-{i:05d}-of-{match['total']}.gguf").removeprefix("./")
        for i in range(1, int(match["total"]) + 1)
    ]
    missing = [p for p in parts if p not in paths]
    if missing:
        raise ModelNotFound(f"{chosen} is split, but the hub lacks {', '.join(missing)}")
    return parts
