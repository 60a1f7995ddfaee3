"""``slmkit convert``: one model in, the artifact each runtime needs out.

Each target lives in its own module here (``hf``, ``onnx``, ``openvino``, ``mlx``)
and uses its ecosystem's own exporter. Results are cached under the user cache
dir, keyed by source and target options, and written atomically: a failed
conversion leaves nothing behind.

A target module provides::

    NAME = "onnx"                               # the --to value
    PACKAGES = (("onnxruntime_genai", "onnxruntime-genai"),)   # import name, pip name
    EXTRA = "onnx"                              # pip extra that installs PACKAGES
    def variant(**options) -> str               # cache-key suffix, e.g. "int4-cpu"; validates
    def build(source: Source, out: Path, **options) -> None   # write the artifact into out
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import BackendNotInstalled, ConversionError, InvalidRequest, ModelNotFound
from ..paths import cache_dir

__all__ = ["TARGETS", "Source", "cached_artifact", "convert", "missing_artifact_error"]

#: --to value -> module in this package. A new target is one module and one line here.
TARGETS = {"hf": "hf", "onnx": "onnx", "openvino": "openvino", "mlx": "mlx"}
#: The same for an embedding model (an encoder exports differently from a decoder).
ENCODER_TARGETS = {"onnx": "onnx_encoder", "gguf": "gguf_encoder"}
MARKER = "slmkit-artifact.json"


@dataclass(frozen=True)
class Source:
    """What a conversion starts from: a catalog alias or a local path, and its GGUF."""

    key: str  # cache-dir name: the alias, or "<file stem>-<size>"
    name: str  # as the user gave it
    gguf: Path | None  # the GGUF, when the source is one
    folder: Path | None  # a transformers checkpoint folder, when the source is one
    spec: Any = None  # the catalog ModelSpec, if any
    encoder: bool = False  # an embedding model (a sentence-transformers folder)


class _Target(Protocol):
    NAME: str
    PACKAGES: tuple[tuple[str, str], ...]
    EXTRA: str

    def variant(self, **options: Any) -> str: ...

    def build(self, source: Source, out: Path, **options: Any) -> None: ...


def _target(to: str, source: Source | None = None) -> _Target:
    name = to.strip().lower()
    encoder = source is not None and source.encoder
    targets = ENCODER_TARGETS if encoder else TARGETS
    if name not in targets:
        which = f" for the embedding model {source.name}" if encoder and source else ""
        raise InvalidRequest(
            f"unknown conversion target {to!r}{which}; use one of: {', '.join(targets)}",
            field="to",
        )
    module_name = targets[name]
    try:
        module: Any = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(__name__):
            raise InvalidRequest(
                f"conversion to {name!r} is not available yet", field="to"
            ) from None
        raise
    return module  # type: ignore[no-any-return]


def resolve_source(model: str) -> Source:
    """A catalog alias (its offline GGUF), a .gguf file, or a checkpoint folder."""
    from .. import catalog
    from .._api import model_ref
    from ..catalog.offline import assemble
    from ..embeddings import encoder_checkpoint

    ref = model_ref(model)
    encoder = encoder_checkpoint(ref)
    if encoder is not None:
        key = ref.spec.alias if ref.spec is not None else f"{encoder.name}-{_tree_size(encoder)}"
        return Source(key, model, None, encoder, ref.spec, encoder=True)
    if ref.spec is not None:
        if ref.spec.packaged is None:
            raise ModelNotFound(
                f"{ref.spec.alias} has no offline GGUF to convert from; download its "
                f"checkpoint ({ref.spec.hub.get('hf')}) and convert that folder"
            )
        return Source(ref.spec.alias, model, assemble(ref.spec.packaged), None, ref.spec)
    if ref.path is None:
        raise ModelNotFound(
            f"cannot convert {model!r}: pass a catalog alias, a .gguf file or a folder"
        )
    path = ref.path
    if path.is_dir():
        return Source(
            f"{path.name}-{_tree_size(path)}", model, None, path, catalog.lookup(path.name)
        )
    return Source(f"{path.stem}-{path.stat().st_size}", model, path, None, None)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def artifact_dir(source: Source, target: str, variant: str) -> Path:
    return cache_dir("converted", source.key, f"{target}-{variant}" if variant else target)


def _check_packages(target: _Target) -> None:
    for module, dist in target.PACKAGES:
        if importlib.util.find_spec(module) is None:
            raise BackendNotInstalled(f"convert --to {target.NAME}", dist, target.EXTRA)


def cached_artifact(model: str, to: str, **options: Any) -> Path | None:
    """The converted artifact if it is already in the cache; never converts."""
    source = resolve_source(model)
    target = _target(to, source)
    path = artifact_dir(source, target.NAME, target.variant(**options))
    return path if (path / MARKER).is_file() else None


def missing_artifact_error(model: str, to: str, backend: str, flags: str = "") -> ModelNotFound:
    """The error a backend raises when its converted artifact is not in the cache yet."""
    command = f"slmkit convert {model} --to {to}" + (f" {flags}" if flags else "")
    return ModelNotFound(
        f"backend {backend!r} needs {model!r} in {to} format, which is not in the cache yet: "
        f"run `{command}` (once; the result is cached)"
    )


def convert(
    model: str, to: str, out: str | Path | None = None, *, force: bool = False, **options: Any
) -> Path:
    """Convert ``model`` to format ``to``; return the artifact folder (cached unless ``out``)."""
    source = resolve_source(model)
    target = _target(to, source)
    variant = target.variant(**options)
    final = (
        Path(out).expanduser() if out is not None else artifact_dir(source, target.NAME, variant)
    )
    if (final / MARKER).is_file() and not force:
        return final
    _check_packages(target)
    if (
        final.exists()
        and any(final.iterdir())
        and not (final / MARKER).is_file()
        and out is not None
    ):
        raise InvalidRequest(f"output folder {final} exists and is not empty; pass another --out")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        target.build(source, staging, **options)
        marker = {
            "source": source.name,
            "target": target.NAME,
            "variant": variant,
            "options": options,
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2, default=str))
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, (ConversionError, InvalidRequest, ModelNotFound, BackendNotInstalled)):
            raise
        if isinstance(exc, Exception):
            raise ConversionError(
                f"converting {source.name} to {target.NAME} failed: {type(exc).__name__}: {exc}"
            ) from exc
        raise
    return final
