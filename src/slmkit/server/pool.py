"""The models one server answers for: each loaded on first use, each with its own queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ModelError, SlmkitError
from .admission import Admission
from .errors import APIError, from_slmkit

if TYPE_CHECKING:
    from .._llm import LLM

__all__ = ["ModelPool", "ServedModel"]

log = logging.getLogger("slmkit.server")

State = Literal["unloaded", "loading", "ready", "failed"]
Models = Any  # LLM | str | Sequence[LLM | str] | Mapping[str, LLM | str], checked at run time


class ServedModel:
    """One model id: an LLM given by the caller, or a name loaded with slmkit.load()."""

    def __init__(
        self, name: str, llm: LLM | None, loader: Callable[[], LLM] | None, admission: Admission
    ) -> None:
        self.name = name
        self.admission = admission
        self.created = int(time.time())
        self._llm = llm
        self._loader = loader
        self._loading: asyncio.Task[None] | None = None
        self.error: SlmkitError | None = None
        #: Called (on the event loop) if loading fails; `slmkit serve` stops on it.
        self.on_failure: list[Callable[[SlmkitError], None]] = []

    @property
    def owned(self) -> bool:
        """Loaded by the server, so closed by it; a caller's LLM stays the caller's."""
        return self._loader is not None

    @property
    def state(self) -> State:
        if self._llm is not None:
            return "ready"
        if self.error is not None:
            return "failed"
        return "loading" if self._loading is not None else "unloaded"

    def start_loading(self) -> None:
        """Begin loading in a worker thread, once; a no-op when loaded or loading."""
        if self._llm is None and self._loading is None and self.error is None:
            self._loading = asyncio.get_running_loop().create_task(self._load())

    async def get(self) -> LLM:
        """The LLM, loading it first if need be (concurrent callers share one load)."""
        self.start_loading()
        if self._llm is None and self._loading is not None:
            await asyncio.shield(self._loading)
        if self._llm is None:
            assert self.error is not None
            raise from_slmkit(self.error)
        return self._llm

    async def _load(self) -> None:
        """Load, or remember why not: a failed model stays failed until the server restarts."""
        assert self._loader is not None
        log.info("loading model %s", self.name)
        started = time.perf_counter()
        try:
            llm = await asyncio.to_thread(self._loader)
        except SlmkitError as exc:
            self.error = exc
            log.error("model %s failed to load: %s: %s", self.name, type(exc).__name__, exc)
        except Exception as exc:
            log.exception("model %s failed to load", self.name)
            self.error = ModelError(
                f"model {self.name!r} failed to load ({type(exc).__name__}); see the server log"
            )
        else:
            self._llm = llm
            seconds = time.perf_counter() - started
            log.info("model %s ready on %s in %.1f s", self.name, llm.info.backend, seconds)
            return
        for callback in self.on_failure:
            callback(self.error)

    def close(self) -> None:
        if self.owned and self._llm is not None:
            self._llm.close()
            self._llm = None


class ModelPool:
    """Served models in order; the first is the default for requests that name none."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        if not models:
            raise ValueError("serve at least one model")
        self.models = {model.name: model for model in models}
        if len(self.models) != len(models):
            raise ValueError("two served models have the same id; give them distinct names")
        self.default = models[0]

    @classmethod
    def build(
        cls,
        models: Models,
        *,
        backend: str | None = None,
        load_options: Mapping[str, Any] | None = None,
        slots: int = 1,
        max_waiting: int = 32,
    ) -> ModelPool:
        from .._llm import LLM

        if isinstance(models, LLM | str):
            models = [models]
        named = list(models.items()) if isinstance(models, Mapping) else None
        if named is None:
            named = [(m.info.model if isinstance(m, LLM) else m, m) for m in models]
        served: list[ServedModel] = []
        for name, model in named:
            admission = Admission(slots, max_waiting)
            if isinstance(model, LLM):
                served.append(ServedModel(name, model, None, admission))
            elif isinstance(model, str):
                loader = _loader(model, backend, dict(load_options or {}))
                served.append(ServedModel(name, None, loader, admission))
            else:
                raise TypeError(f"serve an LLM or a model name, not {type(model).__name__}")
        return cls(served)

    def get(self, name: str | None) -> ServedModel:
        if name is None:
            return self.default
        model = self.models.get(name)
        if model is None:
            served = ", ".join(self.models)
            raise APIError(
                404,
                f"the model {name!r} does not exist here; this server serves: {served}",
                param="model",
                code="model_not_found",
            )
        return model

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self.models.values())

    def gauges(self) -> Iterator[tuple[str, str, tuple[tuple[str, str], ...], float]]:
        for model in self:
            labels = (("model", model.name),)
            yield (
                "slmkit_queue_depth",
                "Requests waiting for their turn.",
                labels,
                model.admission.waiting,
            )
            yield (
                "slmkit_requests_running",
                "Requests generating now.",
                labels,
                model.admission.running,
            )
            yield (
                "slmkit_model_ready",
                "1 when the model is loaded, 0 otherwise.",
                labels,
                1 if model.state == "ready" else 0,
            )

    def close(self) -> None:
        for model in self:
            model.close()


def _loader(name: str, backend: str | None, options: dict[str, Any]) -> Callable[[], LLM]:
    def load() -> LLM:
        from .._api import load as load_model

        return load_model(name, backend, **options)

    return load
