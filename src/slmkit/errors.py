"""The errors slmkit raises. Every one derives from :class:`SlmkitError`.

    SlmkitError
    ├── ConfigError                  bad slmkit.toml / SLMKIT_* value
    ├── BackendError
    │   ├── UnknownBackend           no backend registered under that name
    │   ├── BackendNotInstalled      the backend's extra is not installed (names it)
    │   ├── BackendUnavailable       installed, but cannot run on this machine
    │   └── UnsupportedFeature       the backend cannot do what was asked
    ├── ModelError
    │   ├── ModelNotFound            alias, path or cached artifact not found
    │   ├── InvalidModelFile         file exists but is not a usable model
    │   └── ConversionError          `slmkit convert` failed (nothing left half-written)
    ├── InvalidRequest               bad input: names the field and the fix
    │   ├── ContextLengthExceeded    prompt + max_tokens do not fit the context
    │   ├── NotAChatModel            chat() on a base model or one without a template
    │   ├── NotAGenerativeModel      chat()/generate()/stream() on an embedding model
    │   └── NotAnEmbeddingModel      embed() on a model that generates text
    ├── GenerationError              the runtime failed while generating
    └── HostedError                  a hosted endpoint failed
        ├── AuthenticationError      missing/invalid key (names the env var)
        ├── RateLimitError           429 after retries (has ``retry_after``)
        ├── RequestTimeout           no answer within the timeout
        ├── ServiceError             other HTTP error (has ``status``)
        ├── ServiceRetired           the service is gone for good (410)
        └── StreamInterrupted        the stream broke before it finished (has ``partial_text``)

Messages say what went wrong and what to do next. They never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendNotInstalled",
    "BackendUnavailable",
    "ConfigError",
    "ContextLengthExceeded",
    "ConversionError",
    "GenerationError",
    "HostedError",
    "InvalidModelFile",
    "InvalidRequest",
    "ModelError",
    "ModelNotFound",
    "NotAChatModel",
    "NotAGenerativeModel",
    "NotAnEmbeddingModel",
    "RateLimitError",
    "RequestTimeout",
    "ServiceError",
    "ServiceRetired",
    "SlmkitError",
    "StreamInterrupted",
    "UnknownBackend",
    "UnsupportedFeature",
]


class SlmkitError(Exception):
    """Root of every error slmkit raises on purpose."""


class ConfigError(SlmkitError):
    """A configuration value (file, environment or argument) is invalid."""


class BackendError(SlmkitError):
    """A problem with choosing, importing or running a backend."""


class UnknownBackend(BackendError):
    """No backend is registered under the requested name."""


class BackendNotInstalled(BackendError):
    """The backend's Python packages are missing; the message names the extra."""

    def __init__(self, backend: str, package: str, extra: str) -> None:
        self.backend, self.package, self.extra = backend, package, extra
        super().__init__(
            f"backend {backend!r} needs {package}, which is not installed: "
            f'pip install "slmkit[{extra}]"'
        )


class BackendUnavailable(BackendError):
    """The backend is installed but cannot run here (hardware, platform, config)."""


class UnsupportedFeature(BackendError):
    """The backend cannot honour a parameter or operation; it never degrades quietly."""


class ModelError(SlmkitError):
    """A problem with finding or reading a model."""


class ModelNotFound(ModelError):
    """No model matches the alias or path, or its artifact is not available offline."""


class InvalidModelFile(ModelError):
    """The file exists but is not a valid model for the backend (bad header, truncated...)."""


class ConversionError(ModelError):
    """Converting a model to another format failed; no partial artifact is left behind."""


class InvalidRequest(SlmkitError, ValueError):
    """The request is malformed. ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ContextLengthExceeded(InvalidRequest):
    """The prompt plus ``max_tokens`` does not fit the model's context window."""

    def __init__(self, message: str, prompt_tokens: int, max_tokens: int, context_length: int):
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_length = context_length
        super().__init__(message, field="messages")


class NotAChatModel(InvalidRequest):
    """chat() was called on a base model, or on one without a chat template."""


class NotAGenerativeModel(InvalidRequest):
    """chat(), generate() or stream() on an embedding model: it only answers embed()."""


class NotAnEmbeddingModel(InvalidRequest):
    """embed() on a model that generates text: load an embedding model instead."""


class GenerationError(SlmkitError):
    """The runtime failed while producing tokens."""


class HostedError(SlmkitError):
    """A hosted endpoint failed to answer properly."""


class AuthenticationError(HostedError):
    """The endpoint rejected the credentials, or none were given."""


class RateLimitError(HostedError):
    """The endpoint kept answering 429; ``retry_after`` is its last hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RequestTimeout(HostedError):
    """The endpoint did not answer within the configured timeout."""


class ServiceError(HostedError):
    """The endpoint answered with an HTTP error; ``status`` holds its code."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ServiceRetired(ServiceError):
    """The service has been shut down for good (HTTP 410 Gone)."""


class StreamInterrupted(HostedError, GenerationError):
    """A streamed answer broke off; ``partial_text`` holds what arrived before."""

    def __init__(self, message: str, partial_text: str = "") -> None:
        self.partial_text = partial_text
        super().__init__(message)
