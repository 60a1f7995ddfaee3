"""slmkit: one API for small language models on any runtime.

    >>> import slmkit
    >>> llm = slmkit.load()                       # default model, backend="auto"
    >>> print(llm.chat("Why is the sky blue?").text)

Importing slmkit is cheap: no runtime, no pydantic, no network until first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import backends, errors
from .convert import convert  # eager: the subpackage of that name would shadow a lazy one
from .errors import SlmkitError
from .types import (
    Chunk,
    Completion,
    Embeddings,
    Message,
    ModelInfo,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from ._api import (
        achat,
        aembed,
        agenerate,
        astream,
        chat,
        close_all,
        embed,
        generate,
        load,
        stream,
    )
    from ._llm import LLM
    from ._pull import pull
    from .params import GenerationParams
    from .probe import HardwareReport
    from .ranking import Ranked, rank_backends
    from .registry import BackendStatus
    from .tools import Tool

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "BackendStatus",
    "Chunk",
    "Completion",
    "Embeddings",
    "GenerationParams",
    "HardwareReport",
    "Message",
    "ModelInfo",
    "Ranked",
    "SlmkitError",
    "Timings",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "__version__",
    "achat",
    "aembed",
    "agenerate",
    "astream",
    "backends",
    "chat",
    "close_all",
    "convert",
    "embed",
    "errors",
    "generate",
    "list_backends",
    "load",
    "models",
    "probe_hardware",
    "pull",
    "rank_backends",
    "stream",
]

_LAZY = {
    "load": "._api",
    "generate": "._api",
    "chat": "._api",
    "stream": "._api",
    "agenerate": "._api",
    "achat": "._api",
    "embed": "._api",
    "aembed": "._api",
    "astream": "._api",
    "close_all": "._api",
    "LLM": "._llm",
    "pull": "._pull",
    "GenerationParams": ".params",
    "BackendStatus": ".registry",
    "HardwareReport": ".probe",
    "rank_backends": ".ranking",
    "Ranked": ".ranking",
    "Tool": ".tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slmkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def list_backends() -> list[BackendStatus]:
    """Every registered backend: installed, usable here, why not, and which extra to install."""
    from .registry import backend_statuses

    return backend_statuses()


def probe_hardware(*, refresh: bool = False, deep: bool = False) -> HardwareReport:
    """This machine's hardware report (cached): what ``backend="auto"`` ranks on."""
    from .probe import probe

    return probe(refresh=refresh, deep=deep)


def models() -> list[Any]:
    """The catalog: aliases and the formats and services each model is available in."""
    from .catalog import all_models

    return all_models()
