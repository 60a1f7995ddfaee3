"""``slmkit convert``: one model in, the artifact each runtime needs out.

Each target lives in its own module here (``hf``, ``onnx``, ``openvino``, ``mlx``)
and uses its ecosystem's own exporter. Results are cached under the user cache
dir and written atomically: a failed conversion leaves nothing behind. Each
artifact's marker records the source's content identity, the target, its options
and the target's ``VERSION``; an artifact whose marker does not match the request
is never served (a changed source converts again).

A target module provides::

    NAME = "onnx"                               # the --to value
    PACKAGES = (("onnxruntime_genai", "onnxruntime-genai"),)   # import name, pip name
    EXTRA = "onnx"                              # pip extra that installs PACKAGES
    VERSION = 1                                 # optional; bump when build() output changes
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
from .identity import content_identity

__all__ = ["TARGETS", "Source", "cached_artifact", "convert", "missing_artifact_error"]

#: --to value -> module in this package. A new target is one module and one line here.
TARGETS = {"hf": "hf", "onnx": "onnx", "openvino": "openvino", "mlx": "mlx"}
#: The same for an embedding model (an encoder exports differently from a decoder).
ENCODER_TARGETS = {"onnx": "onnx_encoder", "gguf": "gguf_encoder"}
MARKER = "slmkit-artifact.json"


@dataclass(frozen=True)
class Source:
    """What a conversion starts from: a catalog alias or a local path, and its GGUF."""

    key: str  # cache-dir name: the alias, or "<file stem>-<start of its content hash>"
    name: str  # as the user gave it
    gguf: Path | None  # the GGUF, when the source is one
    folder: Path | None  # a transformers checkpoint folder, when the source is one
    spec: Any = None  # the catalog ModelSpec, if any
    identity: str = ""  # "sha256:<hex>" of the source's content
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
    from ..catalog import model_ref
    from ..catalog.encoders import encoder_checkpoint
    from ..catalog.offline import assemble

    ref = model_ref(model)
    encoder = encoder_checkpoint(ref)
    if encoder is not None:
        identity = content_identity(encoder)
        short = identity.removeprefix("sha256:")[:16]
        key = ref.spec.alias if ref.spec is not None else f"{encoder.name}-{short}"
        return Source(key, model, None, encoder, ref.spec, identity, encoder=True)
    if ref.spec is not None:
        if ref.spec.packaged is None:
            raise ModelNotFound(
                f"{ref.spec.alias} has no offline GGUF to convert from; download its "
                f"checkpoint ({ref.spec.hub.get('hf')}) and convert that folder"
            )
        gguf = assemble(ref.spec.packaged)  # verified against this sha256
        identity = f"sha256:{ref.spec.packaged.sha256}"
        return Source(ref.spec.alias, model, gguf, None, ref.spec, identity)
    if ref.path is None:
        raise ModelNotFound(
            f"cannot convert {model!r}: pass a catalog alias, a .gguf file or a folder"
        )
    path = ref.path
    identity = content_identity(path)
    short = identity.removeprefix("sha256:")[:16]
    if path.is_dir():
        return Source(
            f"{path.name}-{short}", model, None, path, catalog.lookup(path.name), identity
        )
    return Source(f"{path.stem}-{short}", model, path, None, None, identity)


def artifact_dir(source: Source, target: str, variant: str) -> Path:
    return cache_dir("converted", source.key, f"{target}-{variant}" if variant else target)


def _check_packages(target: _Target) -> None:
    for module, dist in target.PACKAGES:
        if importlib.util.find_spec(module) is None:
            raise BackendNotInstalled(f"convert --to {target.NAME}", dist, target.EXTRA)


def _marker(
    source: Source, target: _Target, variant: str, options: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source.name,
        "source_identity": source.identity,
        "target": target.NAME,
        "variant": variant,
        "converter_version": getattr(target, "VERSION", 1),
        "options": options,
    }


def _read_marker(folder: Path, source: Source | None = None) -> dict[str, Any] | None:
    """The folder's marker. Given the catalog ``source`` of a cache folder, a marker
    written before markers held identities counts as made from it: that folder is
    keyed by the alias, whose package is verified by sha256, so nothing reconverts."""
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if source is not None and source.spec is not None and source.key == source.spec.alias:
        data.setdefault("source_identity", source.identity)
        data.setdefault("converter_version", 1)
    return data


def _matches(found: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Same source content, target, variant and converter: the name the user gave may differ."""
    keys = ("source_identity", "target", "variant", "converter_version")
    return found is not None and all(found.get(k) == wanted[k] for k in keys)


def cached_artifact(model: str, to: str, **options: Any) -> Path | None:
    """The converted artifact if the cache holds one made from this very source; never converts."""
    source = resolve_source(model)
    target = _target(to, source)
    variant = target.variant(**options)
    path = artifact_dir(source, target.NAME, variant)
    wanted = _marker(source, target, variant, options)
    return path if _matches(_read_marker(path, source), wanted) else None


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
    wanted = _marker(source, target, variant, options)
    if out is not None:
        _check_out(final, wanted, force)
    if _matches(_read_marker(final, None if out is not None else source), wanted) and not force:
        return final
    _check_packages(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        target.build(source, staging, **options)
        (staging / MARKER).write_text(json.dumps(wanted, indent=2, default=str))
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


def _check_out(folder: Path, wanted: dict[str, Any], force: bool) -> None:
    """``--out`` must be a folder that is empty or holds this very conversion."""
    if folder.exists() and not folder.is_dir():
        raise InvalidRequest(f"--out {folder} is a file; pass a folder to write the artifact into")
    if not folder.exists() or not any(folder.iterdir()):
        return
    found = _read_marker(folder)
    if found is None:  # not an slmkit artifact: never overwritten, even with --force
        raise InvalidRequest(f"output folder {folder} exists and is not empty; pass another --out")
    if not force and not _matches(found, wanted):
        raise InvalidRequest(
            f"output folder {folder} holds another artifact ({found.get('source')!r} to "
            f"{found.get('target')!r} {found.get('variant') or ''}, from different content or "
            "an older converter); pass another --out, or --force to replace it"
        )
