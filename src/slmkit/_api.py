"""load() and the one-shot helpers: turning a model name and config into an LLM."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from . import registry
from ._llm import LLM
from .artifacts import without_conversion
from .backends.base import Backend, Engine, RemoteEngine, TokenEngine
from .catalog import ModelRef, model_ref
from .catalog.models import DEFAULT_EMBEDDING_MODEL
from .config import load_settings
from .embeddings import is_embedding_model
from .errors import BackendError, BackendUnavailable, InvalidRequest, ModelError
from .params import GenerationParams, parse_params
from .types import Chunk, Completion, Embeddings, Message, ModelInfo

__all__ = [
    "achat",
    "aembed",
    "agenerate",
    "astream",
    "chat",
    "embed",
    "generate",
    "load",
    "model_ref",
    "stream",
]

_PARAM_NAMES = frozenset(GenerationParams.model_fields)


def load(model: str | None = None, backend: str | None = None, **options: Any) -> LLM:
    """Load ``model`` (default: the configured default model) on ``backend``.

    ``backend`` defaults to the configured one, else ``"auto"``. Options named like a
    generation parameter (max_tokens, temperature, ...) become this LLM's defaults;
    ``chat_template`` overrides the model's template; the rest go to the backend.
    """
    params = {k: v for k, v in options.items() if k in _PARAM_NAMES}
    rest = {k: v for k, v in options.items() if k not in _PARAM_NAMES}
    chat_template = rest.pop("chat_template", None)
    if chat_template is not None and not isinstance(chat_template, str):
        raise InvalidRequest("chat_template must be a Jinja template string", field="chat_template")
    settings = load_settings(model=model, backend=backend, params=params)
    defaults = parse_params(None, **settings.params)
    ref = model_ref(settings.model)
    if settings.backend == "auto":
        return _load_auto(ref, settings.options_for, rest, defaults, chat_template)
    cls = registry.get_backend(settings.backend)
    options_for = {**settings.options_for(cls.name), **rest}
    return _load_with(cls, ref, options_for, defaults, chat_template, reason="chosen explicitly")


def _load_with(
    cls: type[Backend],
    ref: ModelRef,
    options: dict[str, Any],
    defaults: GenerationParams,
    chat_template: str | None,
    reason: str,
) -> LLM:
    cls.require()
    engine = cls().load(ref, cls.parse_options(options))
    template = chat_template or _model_template(engine, ref)
    info = ModelInfo(
        backend=cls.name,
        model=ref.name,
        artifact=engine.artifact,
        device=engine.device,
        context_length=engine.context_length,
        is_chat=_is_chat(engine, ref, template),
        reason=reason,
        extra=engine.info_extra or {},
    )
    return LLM(engine, info, defaults, template)


def _model_template(engine: Engine, ref: ModelRef) -> str | None:
    if isinstance(engine, TokenEngine) and engine.chat_template:
        return engine.chat_template
    return ref.spec.chat_template if ref.spec is not None else None


def _is_chat(engine: Engine, ref: ModelRef, template: str | None) -> bool:
    if isinstance(engine, RemoteEngine):
        return engine.is_chat
    if ref.spec is not None and not ref.spec.is_chat:
        return template is not None and template != ref.spec.chat_template and bool(template)
    return template is not None


def _load_auto(
    ref: ModelRef,
    options_for: Any,
    extra: dict[str, Any],
    defaults: GenerationParams,
    chat_template: str | None,
) -> LLM:
    """Load the best-ranked usable local backend (slmkit.ranking); on a load failure fall
    back to the next one, and say which one won, why, and what was passed over."""
    from .probe import probe
    from .ranking import rank_backends

    ranking = rank_backends(probe(), ref)
    failed: list[str] = []
    failures: list[Exception] = []
    embedding = is_embedding_model(ref)
    for entry in ranking:
        if not entry.usable:
            continue
        cls = registry.get_backend(entry.name)
        if embedding and not cls.embeds:
            continue  # this runtime has no encoder engine
        options = {**options_for(entry.name), **extra}
        reason = f"auto: {entry.reason}"
        if failed:
            reason += "; fell back past " + "; ".join(failed)
        try:
            with without_conversion():
                return _load_with(cls, ref, options, defaults, chat_template, reason)
        except (BackendError, ModelError) as exc:
            failed.append(f"{entry.name} ({type(exc).__name__}: {exc})")
            failures.append(exc)
    if failures:
        raise failures[0]
    unusable = [f"{r.name}: {r.reason}" for r in ranking if not r.usable]
    raise BackendUnavailable(
        "backend='auto' found no usable local backend: "
        + ("; ".join(unusable) or "none installed")
        + '. Install one, e.g. pip install "slmkit[llamacpp]", or name a hosted backend'
    )


# -- one-shot helpers ---------------------------------------------------------------

_cache: dict[tuple[Any, ...], LLM] = {}
_cache_lock = threading.Lock()


def _cached(model: str | None, backend: str | None, options: dict[str, Any]) -> LLM:
    key = (model, backend, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _cache_lock:
        llm = _cache.get(key)
        if llm is None or llm.closed:
            llm = _cache[key] = load(model, backend, **options)
        return llm


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {k: v for k, v in kwargs.items() if k in _PARAM_NAMES}
    options = {k: v for k, v in kwargs.items() if k not in _PARAM_NAMES}
    return params, options


def generate(
    prompt: str, *, model: str | None = None, backend: str | None = None, **kwargs: Any
) -> Completion:
    """One-shot generate(); the loaded model is cached for the next call."""
    params, options = _split(kwargs)
    return _cached(model, backend, options).generate(prompt, **params)


def chat(
    messages: str | list[Message],
    *,
    model: str | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> Completion:
    """One-shot chat(); the loaded model is cached for the next call."""
    params, options = _split(kwargs)
    return _cached(model, backend, options).chat(messages, **params)


def stream(
    messages: str | list[Message],
    *,
    model: str | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> Iterator[Chunk]:
    """One-shot stream() of a chat answer; the loaded model is cached for the next call."""
    params, options = _split(kwargs)
    return _cached(model, backend, options).stream(messages, **params)


async def agenerate(
    prompt: str, *, model: str | None = None, backend: str | None = None, **kwargs: Any
) -> Completion:
    params, options = _split(kwargs)
    return await _cached(model, backend, options).agenerate(prompt, **params)


async def achat(
    messages: str | list[Message],
    *,
    model: str | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> Completion:
    params, options = _split(kwargs)
    return await _cached(model, backend, options).achat(messages, **params)


def astream(
    messages: str | list[Message],
    *,
    model: str | None = None,
    backend: str | None = None,
    **kwargs: Any,
) -> AsyncIterator[Chunk]:
    params, options = _split(kwargs)
    return _cached(model, backend, options).astream(messages, **params)


def embed(
    inputs: str | list[str],
    *,
    model: str | None = None,
    backend: str | None = None,
    truncate: bool = False,
    **options: Any,
) -> Embeddings:
    """One-shot embed(); ``model`` defaults to the catalog's embedding model, all-minilm-l6-v2."""
    return _cached(model or DEFAULT_EMBEDDING_MODEL, backend, options).embed(
        inputs, truncate=truncate
    )


async def aembed(
    inputs: str | list[str],
    *,
    model: str | None = None,
    backend: str | None = None,
    truncate: bool = False,
    **options: Any,
) -> Embeddings:
    llm = _cached(model or DEFAULT_EMBEDDING_MODEL, backend, options)
    return await llm.aembed(inputs, truncate=truncate)


def close_all() -> None:
    """Close every model the one-shot helpers cached."""
    with _cache_lock:
        for llm in _cache.values():
            llm.close()
        _cache.clear()
