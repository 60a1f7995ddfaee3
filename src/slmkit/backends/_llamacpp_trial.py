"""llama.cpp's weight repacking, tried once per machine before slmkit loads with it.

ggml repacks quantized weights into "extra buffer types" at load (AMX tiles, the CPU
repack layouts such as q4_K_8x8) for faster matrix products. On some machines that
path faults natively: llama-cpp-python 0.3.36 built with GGML_NATIVE on a Xeon VM
with AMX flags dies with SIGSEGV at ``ldtilecfg`` on the first multi-token batch
(RUNTIME-NOTES). ``llama_model_params.use_extra_bufts = False`` avoids it, and
``Llama()`` has no argument for it, so :func:`llama_class` sets the field through a
subclass. :func:`choose` tries the default (repack on) in a child process with the
model being loaded and falls back to repack off only when the default faults.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import trial
from ..errors import BackendUnavailable

if TYPE_CHECKING:
    from llama_cpp import Llama

    from ..gguf import GGUFInfo

__all__ = ["RepackChoice", "check_decode", "choose", "llama_class"]

TRIAL = "llamacpp.extra_buffers"
#: Fastest first: the library's default (repack on), then repack off.
CANDIDATES = ({"extra_buffers": True}, {"extra_buffers": False})
#: A batch of this many prompt tokens takes the kernels that faulted (one token did not).
_PROMPT = b"The quick brown fox jumps over the lazy dog while the cat sleeps. " * 8
_PROMPT_TOKENS = 48


@dataclass(frozen=True)
class RepackChoice:
    """Whether to use llama.cpp's extra buffer types, and why; shown in ``LLM.info``."""

    extra_buffers: bool | None
    why: str

    def llama_class(self) -> type[Llama]:
        return llama_class(self.extra_buffers)

    def info(self) -> dict[str, Any]:
        return {"extra_buffers": self.extra_buffers, "extra_buffers_why": self.why}


def choose(info: GGUFInfo, forced: bool | None, threads: int) -> RepackChoice:
    """The ``extra_buffers`` option when given, else the fastest setting that passed a
    trial on this machine (cached per fingerprint, runtime build and quantization mix)."""
    if forced is not None:
        _require_field()
        return RepackChoice(forced, "set by the extra_buffers option (no trial)")
    candidates = CANDIDATES if _has_field() else ({"extra_buffers": None},)
    decision = trial.decide(
        TRIAL,
        f"{__name__}:check_decode",
        candidates,
        backend="llamacpp",
        args={"model_path": str(info.path), "n_threads": threads},
        versions=runtime_versions(),
        context={"tensor_types": sorted(info.tensor_types)},
    )
    return RepackChoice(decision.require()["extra_buffers"], decision.reason)


def check_decode(model_path: str, n_threads: int, extra_buffers: bool | None) -> None:
    """Run in the trial's child: load as the engine does, evaluate a multi-token batch,
    then decode a few single tokens. Returns when nothing faulted."""
    llama = llama_class(extra_buffers)(
        model_path=model_path,
        n_ctx=256,
        n_batch=64,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        verbose=False,
    )
    tokens = llama.tokenize(_PROMPT)[:_PROMPT_TOKENS]
    llama.eval(tokens)
    for token in tokens[-3:]:
        llama.eval([token])
    llama.close()


def llama_class(extra_buffers: bool | None) -> type[Llama]:
    """``Llama``, or a subclass that sets ``use_extra_bufts`` in the model params it
    builds (``Llama.__init__`` assigns ``self.model_params`` before loading weights)."""
    from llama_cpp import Llama

    if extra_buffers is None:
        return Llama
    _require_field()
    return _with_extra_buffers(extra_buffers)


@cache
def _with_extra_buffers(extra_buffers: bool) -> type[Llama]:
    from llama_cpp import Llama

    class LlamaWithBuffers(Llama):  # type: ignore[misc]
        @property  # type: ignore[misc]
        def model_params(self) -> Any:
            try:
                return self.__dict__["_slmkit_model_params"]
            except KeyError:
                raise AttributeError("model_params") from None

        @model_params.setter
        def model_params(self, params: Any) -> None:
            params.use_extra_bufts = extra_buffers
            self.__dict__["_slmkit_model_params"] = params

    return LlamaWithBuffers


def _has_field() -> bool:
    import llama_cpp

    fields = getattr(llama_cpp.llama_model_params, "_fields_", ())
    return any(field[0] == "use_extra_bufts" for field in fields)


def _require_field() -> None:
    if not _has_field():
        raise BackendUnavailable(
            f"llama-cpp-python {_version()} has no llama_model_params.use_extra_bufts, so "
            "the extra_buffers option cannot be set: upgrade llama-cpp-python, or leave "
            "extra_buffers unset"
        )


def _version() -> str:
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return "?"


@cache
def runtime_versions() -> dict[str, str]:
    """llama-cpp-python's version and an id of its native build: each library's name and
    size, and the CPU kernels' bytes (a rebuild with other CMAKE_ARGS keeps the version
    but may fault differently). Content, not mtimes: every venv installing the same
    wheel shares one verdict."""
    spec = importlib.util.find_spec("llama_cpp")
    digest = hashlib.sha256()
    if spec is not None and spec.submodule_search_locations:
        lib = Path(next(iter(spec.submodule_search_locations)), "lib")
        for path in sorted(lib.glob("*")) if lib.is_dir() else ():
            digest.update(f"{path.name}:{path.stat().st_size}|".encode())
            if path.name == "libggml-cpu.so":
                digest.update(path.read_bytes())
    build = digest.hexdigest()[:12]
    return {"llama-cpp-python": _version(), "build": build}
