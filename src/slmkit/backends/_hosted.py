"""What every hosted backend shares: options, configuration from the environment,
``check()``, error translation, retries and the streaming loop.

A provider file sets a few class attributes and implements how to open a stream with its
SDK and how to read that SDK's events; everything a user can observe (retries, typed
errors, broken streams, secrets kept out of messages) is decided here, once.
"""

from __future__ import annotations

import asyncio
import os
from abc import abstractmethod
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from functools import partial
from time import monotonic
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .._messages import as_openai
from ..errors import (
    AuthenticationError,
    BackendUnavailable,
    HostedError,
    ModelNotFound,
    RateLimitError,
    RequestTimeout,
    ServiceError,
    ServiceRetired,
    SlmkitError,
    StreamInterrupted,
    UnsupportedFeature,
)
from ..structured import ResponseFormat
from ._hosted_stream import StreamState, achunk_events, chunk_events
from ._retry import Failure, RetryPolicy, with_retries, with_retries_async
from ._secrets import display_url, guard_sdk_logs, redact, url_secrets
from .base import (
    Availability,
    Backend,
    Capabilities,
    EngineEvent,
    ModelRef,
    RemoteEngine,
    Request,
)

__all__ = [
    "Endpoint",
    "HostedBackend",
    "HostedEngine",
    "HostedOptions",
    "achunk_events",
    "chunk_events",
]


#: Inputs per embeddings request (OpenAI takes at most 2048).
EMBED_BATCH = 256


class HostedOptions(BaseModel):
    """Options every hosted backend accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(None, description="Endpoint URL; overrides the environment.")
    api_key: SecretStr | None = Field(None, description="Key; overrides the environment.")
    timeout: float = Field(
        600.0, gt=0, le=86400, description="Seconds one attempt may take, request to last byte."
    )
    connect_timeout: float = Field(10.0, gt=0, le=600, description="Seconds to connect.")
    read_timeout: float = Field(
        60.0, gt=0, le=86400, description="Longest silence: before the answer or between pieces."
    )
    max_retries: int = Field(2, ge=0, le=20, description="Retries after the first attempt.")
    backoff_max: float = Field(8.0, ge=0, le=600, description="Longest backoff between tries.")
    retry_after_max: float = Field(
        60.0, ge=0, le=3600, description="Longest Retry-After honoured; longer ones fail."
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON fields added to every request (server-specific parameters).",
    )


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call: resolved once at load time."""

    url: str
    api_key: str | None
    key_source: str


def tool_fields(request: Request) -> dict[str, Any]:
    """OpenAI's ``tools`` and ``tool_choice`` request fields, as the core normalised them."""
    if request.tools is None:
        return {}
    return {"tools": list(request.tools), "tool_choice": request.tool_choice}


def _first_env(names: Iterable[str]) -> tuple[str, str] | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None


class HostedBackend(Backend):
    """A backend that calls a service over HTTP. Subclasses fill the class attributes."""

    kind: ClassVar[Literal["local", "hosted"]] = "hosted"
    extra: ClassVar[str] = "hosted"
    artifact_format: ClassVar[str | None] = None
    options_model: ClassVar[type[BaseModel] | None] = HostedOptions
    #: Environment variables read for the key and the URL, first found wins.
    key_env: ClassVar[tuple[str, ...]] = ()
    url_env: ClassVar[tuple[str, ...]] = ()
    #: The public endpoint; None when the user must name one.
    default_url: ClassVar[str | None] = None
    #: False: a base_url of the user's own (self-hosted) may go without a key.
    key_required_for_own_url: ClassVar[bool] = False
    #: Whether the service takes top_k / repetition_penalty, and raw-prompt completions.
    sampling_extensions: ClassVar[bool] = False
    supports_completion: ClassVar[bool] = False

    @classmethod
    def needs(cls) -> str:
        """What to set to configure this backend, for check() and error messages."""
        key = " or ".join(cls.key_env)
        url = " or ".join(cls.url_env) or "base_url=..."
        if cls.default_url is None:
            return f"set {url} (and {key} if the endpoint wants a key)"
        return f"set {key} (or {url} / base_url=... for a self-hosted endpoint)"

    @classmethod
    def check(cls, hardware: Any = None) -> Availability:
        base = super().check(hardware)
        if not base.installed:
            return base
        if cls.configured():
            return Availability(True, True)
        return Availability(True, False, f"not configured: {cls.needs()}")

    @classmethod
    def configured(cls) -> bool:
        """True when the environment alone says where to go and with which key."""
        url = _first_env(cls.url_env)
        if url is not None and url[1] != cls.default_url:
            return True
        return cls.default_url is not None and _first_env(cls.key_env) is not None

    @classmethod
    def endpoint(cls, options: HostedOptions) -> Endpoint:
        """The URL and key from options, else the environment, else the public endpoint."""
        url_env = _first_env(cls.url_env)
        url = options.base_url or (url_env[1] if url_env else None) or cls.default_url
        if not url:
            raise BackendUnavailable(f"backend {cls.name!r} needs an endpoint: {cls.needs()}")
        if options.api_key is not None:
            return Endpoint(url.rstrip("/"), options.api_key.get_secret_value(), "api_key option")
        key_env = _first_env(cls.key_env)
        if key_env is not None:
            return Endpoint(url.rstrip("/"), key_env[1], key_env[0])
        own_url = cls.default_url is None or url.rstrip("/") != cls.default_url.rstrip("/")
        if own_url and not cls.key_required_for_own_url:
            return Endpoint(url.rstrip("/"), None, "none")
        own = " or ".join(cls.url_env) or "base_url=..."
        raise AuthenticationError(
            f"backend {cls.name!r} needs a key for {display_url(url)}: "
            f"set {' or '.join(cls.key_env)} (or pass api_key=...); "
            f"for a server of your own, set {own} instead"
        )

    def model_id(self, model: ModelRef) -> str:
        """The service's id for ``model``: from the catalog, or the raw name as given."""
        if model.path is not None:
            raise ModelNotFound(
                f"backend {self.name!r} runs models on a server, not local files like "
                f"{model.path}; serve the file (e.g. python -m llama_cpp.server --model ...) "
                f"and use backend 'openai' with its base_url"
            )
        if model.spec is None:
            return model.name
        hosted = model.spec.hosted.get(self.name)
        if hosted:
            return hosted
        services = ", ".join(sorted(model.spec.hosted)) or "none"
        raise ModelNotFound(
            f"catalog model {model.spec.alias!r} has no id on backend {self.name!r} "
            f"(it has ids for: {services}); pass the service's own model id instead"
        )

    def load(self, model: ModelRef, options: Mapping[str, Any]) -> HostedEngine:
        self.require()
        parsed = self.parse_options(options)
        assert isinstance(parsed, HostedOptions)
        engine = self.engine_class()(self, self.endpoint(parsed), self.model_id(model), parsed)
        engine.context_length = model.spec.max_context if model.spec is not None else 0
        return engine

    @classmethod
    @abstractmethod
    def engine_class(cls) -> type[HostedEngine]:
        """The engine that speaks this service's protocol (imported lazily)."""


class HostedEngine(RemoteEngine):
    """Streams from a service. Subclasses open streams and read events with their SDK."""

    device = "remote"

    def __init__(
        self, backend: HostedBackend, endpoint: Endpoint, model_id: str, options: HostedOptions
    ) -> None:
        self.backend_name = backend.name
        #: top_k / repetition_penalty are sent (vLLM and llama.cpp names) only when the
        #: service takes them; raw prompts only where it has /v1/completions.
        self.capabilities = Capabilities(
            concurrent=True,
            tools=True,
            constraint="native",
            constraint_types=frozenset({"json_schema", "json_object"}),
            raw_prompt=backend.supports_completion,
            sampling=frozenset({"top_k", "repetition_penalty"})
            if backend.sampling_extensions
            else frozenset(),
        )
        self.key_env = backend.key_env
        #: The endpoint as shown in messages and info: credentials in the URL masked.
        self.url = display_url(endpoint.url)
        self.model_id = model_id
        self.options = options
        self._secrets = [endpoint.api_key, *url_secrets(endpoint.url)]
        guard_sdk_logs(self._secrets)
        self.artifact = f"{model_id} at {self.url}"
        self.policy = RetryPolicy(
            max_retries=options.max_retries,
            backoff_max=options.backoff_max,
            backoff_base=min(0.5, options.backoff_max),
            retry_after_max=options.retry_after_max,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend_name!r} url={self.url!r}>"

    # -- the contract ------------------------------------------------------------

    def run(self, request: Request) -> Iterator[EngineEvent]:
        """Stream the answer to ``request.messages`` (a chat) or ``request.prompt``."""
        params = request.params
        if request.messages is not None:
            chat, tools = as_openai(request.messages), tool_fields(request)
            return self._drive(
                lambda: self.open_chat(chat, params, request.constraint, tools), "chat"
            )
        prompt = request.prompt or ""
        return self._drive(lambda: self.open_completion(prompt, params), "completion request")

    def embed_batch(self, texts: list[str], truncate: bool) -> tuple[list[list[float]], int]:
        """Vectors from the service's embeddings endpoint, with the same retries as chat."""
        if truncate:
            raise UnsupportedFeature(
                f"backend {self.backend_name!r} cannot truncate inputs: the embeddings API has "
                "no such field; shorten the inputs, or pass a server-specific field in extra_body"
            )
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), EMBED_BATCH):
            part = texts[start : start + EMBED_BATCH]
            got, used = with_retries(
                partial(self.open_embeddings, part),
                self.classify,
                self.policy,
                f"{self.backend_name} embeddings request",
            )
            if len(got) != len(part):
                raise ServiceError(
                    f"backend {self.backend_name!r} at {self.url} returned {len(got)} "
                    f"embeddings for {len(part)} inputs"
                )
            vectors += got
            tokens += used
        return vectors, tokens

    # -- hooks for providers -------------------------------------------------------

    def open_embeddings(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """One embeddings request: vectors in input order, and the prompt tokens used."""
        raise UnsupportedFeature(f"backend {self.backend_name!r} has no embeddings endpoint")

    @abstractmethod
    def open_chat(
        self,
        messages: list[dict[str, Any]],
        params: Any,
        constraint: ResponseFormat | None,
        tools: Mapping[str, Any],
    ) -> Any:
        """Open a streaming chat, ``constraint`` in the service's form and ``tools`` as
        OpenAI's ``tools`` / ``tool_choice`` fields (empty without tools); return the SDK
        stream."""

    def open_completion(self, prompt: str, params: Any) -> Any:
        raise NotImplementedError

    @abstractmethod
    def events(self, stream: Any) -> Iterator[EngineEvent]:
        """Parse the SDK stream into TextDelta and (partial) Finish events."""

    @abstractmethod
    def describe(self, exc: Exception) -> tuple[str, int | None, str, Mapping[str, str] | None]:
        """(kind, status, server message, headers) for an SDK exception.

        kind is "status" (an HTTP error answer), "timeout", "connection" or "other".
        """

    def close_stream(self, stream: Any) -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            close()

    def retired_message(self) -> str:
        return (
            f"the endpoint {self.url} answered 410 Gone: the service behind backend "
            f"{self.backend_name!r} has been shut down; move to another endpoint"
        )

    # -- shared policy ---------------------------------------------------------------

    def sampling(self, params: Any) -> dict[str, Any]:
        """The request fields for GenerationParams, shared by every provider."""
        fields: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            fields["seed"] = params.seed
        if params.stop:
            fields["stop"] = list(params.stop)
        return fields

    def extensions(self, params: Any) -> dict[str, Any]:
        """Non-standard fields: top_k / repetition_penalty when set, then extra_body."""
        body: dict[str, Any] = {}
        if params.top_k:
            body["top_k"] = params.top_k
        if params.repetition_penalty != 1.0:
            body["repetition_penalty"] = params.repetition_penalty  # vLLM, TGI, SGLang, NIM
            body["repeat_penalty"] = params.repetition_penalty  # llama.cpp servers
        body.update(self.options.extra_body)
        return body

    def redact(self, text: str) -> str:
        """Remove the key (and URL credentials) from text that came from elsewhere."""
        return redact(text, self._secrets)

    def classify(self, exc: Exception) -> Failure:
        """Turn an SDK exception into the slmkit error to raise and whether to retry."""
        if isinstance(exc, SlmkitError):
            return Failure(exc, retryable=False)
        kind, status, message, headers = self.describe(exc)
        message = self.redact(message.strip())[:500]
        where = f"backend {self.backend_name!r} at {self.url}"
        if kind == "timeout":
            error: HostedError = RequestTimeout(
                f"{where} did not answer within {self.read_timeout:g} s "
                f"(connect {self.options.connect_timeout:g} s) after "
                f"{self.policy.max_retries + 1} attempt(s); raise read_timeout=... or retry later"
            )
            return Failure(error, retryable=True)
        if kind == "connection":
            error = ServiceError(
                f"{where}: cannot connect ({message}); check base_url and that the server is up"
            )
            return Failure(error, retryable=True)
        if kind != "status" or status is None:
            return Failure(ServiceError(f"{where} failed: {message}"), retryable=False)
        return self._http_failure(status, message, headers, where)

    def _http_failure(
        self, status: int, message: str, headers: Mapping[str, str] | None, where: str
    ) -> Failure:
        from ._retry import parse_retry_after, retryable_status

        said = f": {message}" if message else ""
        retry_after = parse_retry_after(headers)
        if status in (401, 403):
            env = " or ".join(self.key_env) or "the key"
            return Failure(
                AuthenticationError(
                    f"{where} rejected the credentials (HTTP {status}){said}; "
                    f"set {env} to a valid key (or pass api_key=...)"
                ),
                retryable=False,
            )
        if status == 410:
            return Failure(ServiceRetired(self.retired_message(), status=410), retryable=False)
        if status == 404:
            return Failure(
                ServiceError(
                    f"{where} answered 404{said}; check the model id {self.model_id!r} "
                    f"and the base_url",
                    status=404,
                ),
                retryable=False,
            )
        if status == 429:
            hint = f"; the server asks to wait {retry_after:g} s" if retry_after else ""
            return Failure(
                RateLimitError(
                    f"{where} is rate limiting (HTTP 429){said}{hint}; retry later, or raise "
                    f"max_retries / retry_after_max",
                    retry_after=retry_after,
                ),
                retryable=True,
                retry_after=retry_after,
            )
        if status == 408:
            return Failure(
                RequestTimeout(f"{where} timed out on its side (HTTP 408){said}"),
                retryable=True,
                retry_after=retry_after,
            )
        return Failure(
            ServiceError(f"{where} answered HTTP {status}{said}", status=status),
            retryable=retryable_status(status),
            retry_after=retry_after,
        )

    @property
    def read_timeout(self) -> float:
        """What the SDK is told to wait for any one read: never beyond the total timeout."""
        return min(self.options.read_timeout, self.options.timeout)

    def _drive(self, open_stream: Callable[[], Any], what: str) -> Iterator[EngineEvent]:
        """Open with retries, then stream; a break midway is StreamInterrupted, never a finish.

        A generator, so nothing goes over the network until the caller iterates.
        """
        started = [monotonic()]

        def attempt() -> Any:
            started[0] = monotonic()
            return open_stream()

        stream = with_retries(attempt, self.classify, self.policy, f"{self.backend_name} {what}")
        state = StreamState(self, deadline=started[0] + self.options.timeout)
        broke: StreamInterrupted | None = None
        try:
            for event in self.events(stream):
                passed = state.take(event)
                if passed is not None:
                    yield passed
        except GeneratorExit:
            raise
        except Exception as exc:
            broke = state.interrupted(exc)
        finally:
            self.close_stream(stream)
        if broke is not None:  # raised here, chained to nothing: the SDK error may hold the key
            raise broke
        yield state.finish()

    async def arun(self, request: Request) -> AsyncIterator[EngineEvent]:
        """run() through the SDK's async client where the provider has one."""
        if not self.has_async:
            async for event in super().arun(request):
                yield event
            return
        params = request.params
        if request.messages is not None:
            chat, tools = as_openai(request.messages), tool_fields(request)
            opened = self._adrive(
                lambda: self.aopen_chat(chat, params, request.constraint, tools), "chat"
            )
        else:
            prompt = request.prompt or ""
            opened = self._adrive(lambda: self.aopen_completion(prompt, params), "completion")
        async for event in opened:
            yield event

    #: True when the provider implements aopen_chat/aopen_completion/aevents.
    has_async: ClassVar[bool] = False

    async def aopen_chat(
        self,
        messages: list[dict[str, Any]],
        params: Any,
        constraint: ResponseFormat | None,
        tools: Mapping[str, Any],
    ) -> Any:
        raise NotImplementedError

    async def aopen_completion(self, prompt: str, params: Any) -> Any:
        raise NotImplementedError

    def aevents(self, stream: Any) -> AsyncIterator[EngineEvent]:
        raise NotImplementedError

    async def aclose_stream(self, stream: Any) -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            await close()

    async def _adrive(
        self, open_stream: Callable[[], Awaitable[Any]], what: str
    ) -> AsyncIterator[EngineEvent]:
        started = [monotonic()]

        async def attempt() -> Any:
            started[0] = monotonic()
            return await open_stream()

        stream = await with_retries_async(
            attempt, self.classify, self.policy, f"{self.backend_name} {what}"
        )
        state = StreamState(self, deadline=started[0] + self.options.timeout)
        broke: StreamInterrupted | None = None
        try:
            async for event in self.aevents(stream):
                passed = state.take(event)
                if passed is not None:
                    yield passed
        except (GeneratorExit, asyncio.CancelledError):
            raise
        except Exception as exc:
            broke = state.interrupted(exc)
        finally:
            await self.aclose_stream(stream)
        if broke is not None:
            raise broke
        yield state.finish()
