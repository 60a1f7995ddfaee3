"""The contract every backend implements, built-in or third-party (engine contract v2).

A :class:`Backend` is registered under the entry-point group ``slmkit.backends``; its
``load()`` returns an :class:`Engine`. An engine declares its :class:`Capabilities` and
has one entry point, :meth:`Engine.run`: one :class:`Request` in, typed events out
(:class:`Token`, :class:`TextDelta`, :class:`ToolCallDelta`, :class:`Finish`).

Local runtimes subclass :class:`TokenEngine` (prompt token ids in, :class:`Token` events
out); the core owns templates, stop sequences, detokenizing, max_tokens, usage and
timings. Hosted services subclass :class:`RemoteEngine` (messages in, text out).
docs/architecture.md walks one request through the core.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from ..catalog import ModelRef
from ..errors import BackendNotInstalled, InvalidRequest
from ..textstream import Detokenizer, WindowDetokenizer
from ..types import FinishReason, Message, ToolCallDelta, Usage

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..params import GenerationParams
    from ..probe import HardwareReport
    from ..scheduler import SchedulerStats

__all__ = [
    "Availability",
    "Backend",
    "Capabilities",
    "Engine",
    "EngineEvent",
    "Finish",
    "ModelRef",
    "Prefill",
    "RemoteEngine",
    "Request",
    "Scheduler",
    "TextDelta",
    "Token",
    "TokenEngine",
    "ToolCallDelta",
]


# -- what an engine can do ------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What an engine declares it can do; the core refuses anything else up front.

    ``constraint``: how it applies a structured-output constraint: "mask" (the core's
    per-token mask through a logits hook), "native" (the runtime's own structured output)
    or None. ``constraint_types`` lists the response_format types it accepts then.
    ``sampling``: the optional sampling parameters it honours (``top_k``,
    ``repetition_penalty``); a request that sets another to a non-neutral value is refused.
    ``concurrent``: requests may run at the same time (hosted services, and a runtime that
    batches them: ``batching``).
    ``tools``: the engine passes ``Request.tools`` to its service and reports the calls as
    :class:`ToolCallDelta` events (hosted engines). Token engines need no flag: the core
    renders tools through the chat template and finds the calls in the text.
    """

    constraint: Literal["mask", "native"] | None = None
    constraint_types: frozenset[str] = frozenset()
    tools: bool = False
    images: bool = False
    embeddings: bool = False
    batching: bool = False
    prefix_reuse: bool = False
    logprobs: bool = False
    raw_prompt: bool = True
    sampling: frozenset[str] = frozenset({"top_k", "repetition_penalty"})
    concurrent: bool = False


# -- one request in ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Everything one generation needs, validated by the core before the engine sees it.

    Token engines read ``prompt_ids``; hosted engines read ``messages`` (a chat) or
    ``prompt`` (a raw completion). ``constraint``, ``tools`` and ``media`` are filled by
    the features that need them and are None/empty otherwise; ``tools`` and
    ``tool_choice`` are in OpenAI's shape, for hosted engines. ``facts`` is this request's
    own slot for runtime figures (OpenVINO's perf metrics, ...): the engine may write to it
    while running and the core hands it out as ``Completion.runtime``.
    """

    params: GenerationParams
    prompt_ids: Sequence[int] | None = None
    messages: list[Message] | None = None
    prompt: str | None = None
    constraint: Any = None
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    media: tuple[Any, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict, compare=False)


# -- typed events out ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A generated token id (token engines)."""

    id: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of generated text (hosted engines)."""

    text: str


@dataclass(frozen=True, slots=True)
class Prefill:
    """Sent before the first token by an engine that reused part of the prompt's state:
    ``cached_tokens`` of the prompt were not evaluated again."""

    cached_tokens: int


@dataclass(frozen=True, slots=True)
class Finish:
    """The engine's last word. ``reason`` None: the runtime stopped by itself (EOS).

    ``usage`` None: the engine does not know (the core counts for token engines; for a
    hosted service that sent none, usage stays unknown rather than invented).
    """

    reason: FinishReason | None = None
    usage: Usage | None = None


EngineEvent = Token | TextDelta | ToolCallDelta | Prefill | Finish


class Scheduler(Protocol):
    """The seam between an LLM and its engine: takes requests, hands back event streams.

    ``submit`` returns an iterator that runs the request when iterated (so validation
    errors raise at call time and no work starts before the consumer asks); a set
    ``cancel`` takes a queued request out of line. ``stats()`` gives queue depth and
    requests running. ``close`` ends waiting and running requests with an error and returns.
    """

    def submit(
        self, engine: Engine, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[EngineEvent]: ...

    def stats(self) -> SchedulerStats: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why not."""

    installed: bool
    usable: bool
    reason: str = ""


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
    #: load() can return an embedding engine (``backend="auto"`` picks only these for one).
    embeds: ClassVar[bool] = False

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
    def runtime_build(
        cls, folder_of: Callable[[str], Path | None], installed: Callable[[str], bool]
    ) -> str | None:
        """The accelerator the installed runtime was built for ("cpu", "cuda", "hip",
        "metal", "directml", ...), read from its files without importing it; None when
        not installed or not known. ``slmkit probe`` reports it under ``builds``.
        ``folder_of`` (module -> its folder) and ``installed`` (distribution -> bool) read
        the environment; tests pass a recorded wheel's layout."""
        return None

    @classmethod
    def require(cls) -> None:
        """Raise BackendNotInstalled naming the extra when a package is missing."""
        missing = cls.missing_package()
        if missing is not None:
            raise BackendNotInstalled(cls.name, missing[1], cls.extra)

    @classmethod
    def parse_options(cls, options: Mapping[str, Any]) -> Any:
        """Validate backend-only options once; the result is what load() receives.

        An unknown option is an error naming the known ones. None when the backend
        takes no options.
        """
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
    def load(self, model: ModelRef, options: Any) -> Engine:
        """Load ``model`` with ``options``, the instance parse_options() returned.

        ``model`` comes from the catalog's resolver; :func:`slmkit.catalog.resolve_artifact`
        turns it into the file or folder this runtime reads (converting when needed).
        """


class Engine(ABC):
    """A loaded model: declares what it can do and runs one request at a time.

    Subclasses set the attributes in ``__init__`` and implement :meth:`run`. The core
    checks every request against :attr:`capabilities` before calling :meth:`run`, so an
    engine never has to refuse a feature it did not declare.
    """

    artifact: str = ""
    device: str = "cpu"
    context_length: int = 0
    #: Static runtime facts shown as ``LLM.info.extra`` (copied once at load time).
    info_extra: Mapping[str, Any] | None = None
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    def run(self, request: Request) -> Iterator[EngineEvent]:
        """Yield the events of one generation; ``close()`` on the iterator stops the work.

        Token engines yield :class:`Token` for each generated id and may end with a
        :class:`Finish` (no reason: the runtime stopped by itself). Hosted engines yield
        :class:`TextDelta` (and :class:`ToolCallDelta`) and end with :class:`Finish`. The
        core enforces EOS, max_tokens and stop sequences, so an engine may loop without
        bound.
        """

    def make_scheduler(self) -> Scheduler:
        """The scheduler the LLM sends this engine's requests through.

        The default runs one request at a time in arrival order; a runtime that batches
        returns its own. Hosted engines run requests concurrently.
        """
        from ..scheduler import ConcurrentScheduler, SerialScheduler

        return ConcurrentScheduler() if self.capabilities.concurrent else SerialScheduler()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the runtime's resources. Called once, after the last request ended."""


class TokenEngine(Engine):
    """A local runtime: token ids in, token ids out. The core owns everything else."""

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
        and lets special-token strings (``<|im_start|>``) map to their ids; without
        it, such strings are plain text (user content must never become a marker)."""

    def tokenize_markup(self, text: str) -> list[int]:
        """Token ids for a chat template's own text: markers map to their ids, no BOS.

        This default strips the BOS that ``tokenize(add_special=True)`` adds; engines
        whose runtime can parse markers without adding BOS override it.
        """
        ids = self.tokenize(text, add_special=True)
        if self.adds_bos:
            bos = self.tokenize("", add_special=True)
            if bos and ids[: len(bos)] == bos:
                return ids[len(bos) :]
        return ids

    @abstractmethod
    def decode(self, token_ids: Sequence[int]) -> str:
        """Text for a sequence of ids, special tokens skipped."""

    def detokenizer(self) -> Detokenizer:
        """A fresh incremental detokenizer for one generation."""
        return WindowDetokenizer(self.decode)


class RemoteEngine(Engine):
    """A hosted service: takes messages (or a raw prompt) and streams text."""

    is_chat: bool = True
    capabilities: Capabilities = Capabilities(concurrent=True)

    async def arun(self, request: Request) -> AsyncIterator[EngineEvent]:
        """Async twin of :meth:`run`; the default drives :meth:`run` in a worker thread."""
        from .._threads import iterate_in_thread

        async for event in iterate_in_thread(self.run(request)):
            yield event
