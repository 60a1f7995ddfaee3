"""The contract every backend implements, built-in or third-party.

A :class:`Backend` is registered under the entry-point group ``slmkit.backends``.
``load()`` returns an :class:`Engine`. Local runtimes implement :class:`TokenEngine`
(token ids in, token ids out) and the core owns templates, stop sequences,
detokenizing, max_tokens, usage and timings. Hosted services implement
:class:`RemoteEngine` (messages in, text deltas out).
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..errors import BackendNotInstalled, InvalidRequest
from ..textstream import Detokenizer, WindowDetokenizer
from ..types import FinishReason, Message, Usage

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..catalog import ModelSpec
    from ..params import GenerationParams
    from ..probe import HardwareReport

__all__ = [
    "Availability",
    "Backend",
    "Delta",
    "Engine",
    "ModelRef",
    "RemoteEngine",
    "TokenEngine",
]


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why not."""

    installed: bool
    usable: bool
    reason: str = ""


@dataclass(frozen=True)
class ModelRef:
    """The model a user asked for: a catalog alias, a local path, or a raw id."""

    name: str
    spec: ModelSpec | None = None
    path: Path | None = None


class Backend(ABC):
    """One runtime adapter. Subclasses set the class attributes and implement load()."""

    name: ClassVar[str]
    extra: ClassVar[str]
    #: (import name, pip distribution) pairs that must be importable.
    packages: ClassVar[tuple[tuple[str, str], ...]] = ()
    kind: ClassVar[Literal["local", "hosted"]] = "local"
    #: The artifact format load() reads ("gguf", "hf", "onnx", "openvino", "mlx"); the
    #: converter target that makes it from the offline GGUFs. None for hosted backends.
    artifact_format: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    #: pydantic model (extra="forbid") of the backend-only options load() accepts.
    options_model: ClassVar[type[BaseModel] | None] = None

    @classmethod
    def missing_package(cls) -> tuple[str, str] | None:
        """The first required package that is not installed, without importing it."""
        for module, dist in cls.packages:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                return module, dist
        return None

    @classmethod
    def check(cls, hardware: Any = None) -> Availability:
        """Is the backend installed and usable here? Cheap: never imports the runtime."""
        missing = cls.missing_package()
        if missing is not None:
            return Availability(
                False, False, f'needs {missing[1]}: pip install "slmkit[{cls.extra}]"'
            )
        return Availability(True, True)

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        """Where ``backend="auto"`` places this backend on ``report`` before anything was
        measured here: a score (0-100, higher first) and the reason. A measurement on this
        machine (calibration, ``slmkit bench --autotune``) outranks it; override to rank."""
        return 10.0, "third-party backend: no rule for it, ranked after the known ones"

    @classmethod
    def runtime_build(cls) -> str | None:
        """The accelerator the installed runtime was built for ("cpu", "cuda", "hip",
        "metal", "directml", ...), read from its files without importing it; None when
        not installed or not known. ``slmkit probe`` reports it under ``builds``."""
        return None

    @classmethod
    def require(cls) -> None:
        """Raise BackendNotInstalled naming the extra when a package is missing."""
        missing = cls.missing_package()
        if missing is not None:
            raise BackendNotInstalled(cls.name, missing[1], cls.extra)

    @classmethod
    def parse_options(cls, options: Mapping[str, Any]) -> Any:
        """Validate backend-only options; an unknown option is an error naming the known ones."""
        from pydantic import ValidationError

        if cls.options_model is None:
            if options:
                name = next(iter(options))
                raise InvalidRequest(f"backend {cls.name!r} takes no option {name!r}", field=name)
            return None
        try:
            return cls.options_model.model_validate(dict(options))
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "options"
            known = ", ".join(cls.options_model.model_fields)
            if error["type"] == "extra_forbidden":
                message = f"backend {cls.name!r} has no option {name!r}; its options: {known}"
            else:
                message = (
                    f"backend {cls.name!r} option {name}={error.get('input')!r}: {error['msg']}"
                )
            raise InvalidRequest(message, field=name) from None

    @abstractmethod
    def load(self, model: ModelRef, options: Mapping[str, Any]) -> Engine:
        """Resolve the model's artifact for this runtime and load it."""


class Engine(ABC):  # noqa: B024 - abstract by intent: subclass TokenEngine or RemoteEngine
    """A loaded model. Subclasses set these attributes in __init__."""

    artifact: str = ""
    device: str = "cpu"
    context_length: int = 0
    #: Runtime-specific figures shown as ``LLM.info.extra``; the engine may update it in place.
    info_extra: dict[str, Any] | None = None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources. Called once by LLM.close()."""


class TokenEngine(Engine):
    """A local runtime that turns prompt token ids into generated token ids."""

    #: Jinja chat template shipped with the model (None: the catalog's or none).
    chat_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    #: Token ids that end generation (end-of-turn and end-of-sequence).
    eos_token_ids: Container[int] = frozenset()
    #: True when tokenize(text, add_special=True) prepends the BOS token.
    adds_bos: bool = False

    @abstractmethod
    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        """Token ids for text. ``add_special`` adds BOS where the model wants one,
        and lets special-token strings (``<|im_start|>``) map to their ids."""

    @abstractmethod
    def decode(self, token_ids: Sequence[int]) -> str:
        """Text for a sequence of ids, special tokens skipped."""

    def detokenizer(self) -> Detokenizer:
        """A fresh incremental detokenizer for one generation."""
        return WindowDetokenizer(self.decode)

    def check_params(self, params: GenerationParams) -> None:
        """Raise UnsupportedFeature for a parameter this runtime cannot honour."""

    @abstractmethod
    def generate_tokens(self, prompt_ids: list[int], params: GenerationParams) -> Iterator[int]:
        """Yield generated token ids until the caller stops iterating.

        The core stops at EOS, max_tokens and stop sequences and then closes the
        iterator, so implementations may loop without bound; ``close()`` on the
        generator must stop the runtime's work.
        """


@dataclass(frozen=True)
class Delta:
    """A piece of a hosted answer; the last one carries finish_reason and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class RemoteEngine(Engine):
    """A hosted service that takes messages and streams text."""

    is_chat: bool = True

    @abstractmethod
    def stream_chat(self, messages: list[Message], params: GenerationParams) -> Iterator[Delta]:
        """Stream the assistant's answer to ``messages``."""

    @abstractmethod
    def stream_completion(self, prompt: str, params: GenerationParams) -> Iterator[Delta]:
        """Stream a raw-prompt continuation (or raise UnsupportedFeature)."""
