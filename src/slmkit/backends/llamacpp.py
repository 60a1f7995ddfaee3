"""llama.cpp through llama-cpp-python: GGUF files, CPU first, GPU offload when built for it."""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..calibrate import reloading, thread_candidates, tuned
from ..catalog import hfcache, hubfiles
from ..catalog.offline import assemble
from ..catalog.search import find_within
from ..embeddings import encoder_gguf
from ..errors import InvalidModelFile, ModelNotFound
from ..gguf import GGUFInfo, read_gguf
from ..probe import physical_cores
from ..structured import CONSTRAINT_TYPES
from ..textstream import ByteDetokenizer, Detokenizer
from . import _llamacpp_trial
from ._llamacpp_prefix import PrefixCache
from ._masked import GrammarTokenizer, masked_events
from .base import (
    Backend,
    Capabilities,
    Engine,
    Finish,
    ModelRef,
    Prefill,
    Request,
    Token,
    TokenEngine,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llguidance import LLTokenizer

    from ..params import GenerationParams
    from ..probe import HardwareReport
    from ..structured import TokenConstraint

__all__ = ["LlamaCppBackend", "LlamaCppOptions"]


class LlamaCppOptions(BaseModel):
    """Options for backend="llamacpp"."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(
        None, ge=16, description="Context window (n_ctx); default: the catalog's, else 4096."
    )
    n_threads: int | None = Field(
        None, ge=1, description="Decode threads; default: measured at first load (1..cores)."
    )
    n_threads_batch: int | None = Field(
        None, ge=1, description="Prompt threads; default: n_threads."
    )
    n_batch: int = Field(512, ge=1, description="Prompt tokens evaluated per batch.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to the GPU; -1 for all.")
    use_mmap: bool = True
    verbose: bool = Field(False, description="Let llama.cpp log to stderr.")
    prefix_reuse: bool = Field(
        False,
        description="Keep the evaluated prompt between requests and evaluate only the new "
        "suffix (conversations, shared system prompts). Off by default: greedy text can "
        "differ from a fresh evaluation (docs/conversations.md).",
    )
    prefix_cache_entries: int = Field(
        4, ge=0, le=64, description="Saved prompt states kept for prefix_reuse (LRU)."
    )
    extra_buffers: bool | None = Field(
        None,
        description="Repack weights into llama.cpp's extra buffer types (AMX, CPU repack); "
        "default: on unless a one-time trial on this machine faulted (docs/backends/llamacpp.md).",
    )
    calibrate: bool = Field(
        True, description="Measure the thread default on first load (SLMKIT_CALIBRATE=0: never)."
    )


class LlamaCppBackend(Backend):
    name = "llamacpp"
    extra = "llamacpp"
    packages = (("llama_cpp", "llama-cpp-python"),)
    artifact_format = "gguf"
    description = "llama.cpp (GGUF); fast on CPU, GPU offload when built with CUDA/Metal"
    options_model = LlamaCppOptions
    embeds = True

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        gpu = report.builds.get(cls.name)
        if report.nvidia and gpu == "cuda":
            return 90, f"NVIDIA {report.nvidia[0].name}: llama.cpp CUDA build, layers offloaded"
        if report.rocm and gpu == "hip":
            return 90, "AMD GPU: llama.cpp ROCm/HIP build, layers offloaded"
        if report.apple_silicon:
            if gpu == "metal":
                return 90, "Apple silicon: llama.cpp Metal build, second to MLX"
            return 55, "Apple silicon: this llama.cpp build has no Metal; reinstall it with Metal"
        score, reason = (
            (75, "CPU: llama.cpp's NEON kernels lead on ARM CPUs")
            if report.arch == "arm64"
            else (60, "CPU: llama.cpp runs the GGUF as shipped (~88 / ~61 tok/s), no conversion")
        )
        if report.nvidia or report.rocm:
            reason += "; the GPU is unused: install a CUDA/ROCm build of llama-cpp-python"
        return score, reason

    @classmethod
    def runtime_build(
        cls, folder_of: Callable[[str], Path | None], installed: Callable[[str], bool]
    ) -> str | None:
        folder = folder_of("llama_cpp")
        if folder is None:
            return None
        names = " ".join(p.name.lower() for p in folder.glob("lib/*"))
        gpu = [b for b in ("cuda", "metal", "hip", "vulkan") if f"ggml-{b}" in names]
        return gpu[0] if gpu else "cpu"

    def load(self, model: ModelRef, options: LlamaCppOptions) -> Engine:
        opts = options
        encoder = encoder_gguf(model)
        if encoder is not None:
            from ..embeddings.llamacpp import LlamaCppEncoder

            return LlamaCppEncoder(encoder, opts.n_threads)
        info = read_gguf(resolve_gguf(model))
        default_ctx = model.default_context
        context = opts.context_length or min(default_ctx, info.context_length or default_ctx)
        on_cpu = opts.n_gpu_layers == 0
        return tuned(
            type(self),
            model.name,
            info.path,
            {"n_batch": opts.n_batch, "use_mmap": opts.use_mmap},
            {"n_threads": opts.n_threads, "n_threads_batch": opts.n_threads_batch},
            thread_candidates("n_threads", runtime_default=False) if on_cpu else [],
            reloading(lambda s: LlamaCppEngine(info, context, opts.model_copy(update=s))),
            enabled=opts.calibrate,
        )


def resolve_gguf(model: ModelRef) -> Path:
    """The GGUF file for a path, a catalog alias, or a hub repo in the HF cache."""
    if model.path is not None:
        if model.path.is_dir():
            return _single_gguf(model.path, str(model.path))
        return model.path
    spec = model.spec
    if spec is not None:
        if spec.packaged is not None:
            return assemble(spec.packaged)
        if "gguf" in spec.hub:
            return hfcache.resolve(spec.hub["gguf"], f"{spec.alias} (GGUF)", "gguf")
        raise ModelNotFound(f"{spec.alias} has no GGUF; use another backend (slmkit models)")
    if "/" in model.name:
        from ..catalog import HubArtifact

        folder = hfcache.resolve(HubArtifact(model.name), model.name, "gguf")
        return _single_gguf(folder, model.name, hub=True)
    raise ModelNotFound(
        f"unknown model {model.name!r}: use a catalog alias (slmkit models), a .gguf path, "
        "or a hub repo id in the Hugging Face cache"
    )


def _single_gguf(folder: Path, what: str, *, hub: bool = False) -> Path:
    """The one GGUF at the top of ``folder``; a hub snapshot may hold several quantizations
    (one level deeper too), chosen by the catalog's rule (hubfiles.choose_gguf)."""
    files = find_within(
        folder, lambda p: p.suffix == ".gguf" and p.is_file(), 2 if hub else 1, what
    )
    if hub:
        names = [f.relative_to(folder).as_posix() for f in files]
        return folder / hubfiles.choose_gguf(names, what)
    if not files:
        raise ModelNotFound(f"no .gguf file in {what} (at its top level)")
    if len(files) == 1:
        return files[0]
    listed = ", ".join(str(f.relative_to(folder)) for f in files)
    raise ModelNotFound(f"{what} holds several GGUF files ({listed}); pass the path of one")


class _EndOfGeneration:
    """Membership test against llama.cpp's own end-of-generation flags (EOS, EOT, ...)."""

    def __init__(self, vocab: Any) -> None:
        import llama_cpp

        self._vocab = vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog

    def __contains__(self, token: object) -> bool:
        return isinstance(token, int) and bool(self._is_eog(self._vocab, token))


class LlamaCppEngine(TokenEngine):
    def __init__(self, info: GGUFInfo, context_length: int, opts: LlamaCppOptions) -> None:
        threads = opts.n_threads or physical_cores()
        # A native fault cannot be caught: repacking is tried in a child first (cached).
        repack = _llamacpp_trial.choose(info, opts.extra_buffers, threads)
        self.info_extra = {"llamacpp": repack.info()}
        try:
            with _quiet(not opts.verbose):
                self._llama: Llama = repack.llama_class()(
                    model_path=str(info.path),
                    n_ctx=context_length,
                    n_threads=threads,
                    n_threads_batch=opts.n_threads_batch or threads,
                    n_batch=min(opts.n_batch, context_length),
                    n_gpu_layers=opts.n_gpu_layers,
                    use_mmap=opts.use_mmap,
                    verbose=opts.verbose,
                )
        except (ValueError, RuntimeError) as exc:
            raise InvalidModelFile(
                f"llama.cpp could not load {info.path} ({exc}); the file may be for a newer "
                "llama.cpp: upgrade llama-cpp-python, or re-download the model"
            ) from exc
        llama = self._llama
        self.artifact = str(info.path)
        self.device = "cuda" if opts.n_gpu_layers else "cpu"
        # llama.cpp pads n_ctx (to 256), but llama-cpp-python sizes its token buffer to the
        # n_ctx asked for: a prompt past that crashed in numpy. The smaller one is the limit.
        self.context_length = min(llama.n_ctx(), len(llama.input_ids))
        self.chat_template = info.chat_template
        model = llama._model
        self.adds_bos = bool(model.add_bos_token())
        self.bos_token = self._special_text(llama.token_bos())
        self.eos_token = self._special_text(llama.token_eos())
        self.eos_token_ids = _EndOfGeneration(model.vocab)
        self._token_to_piece = model.token_to_piece
        self.grammar = GrammarTokenizer(self._llguidance_tokenizer)
        self._prefix = PrefixCache(llama, opts.prefix_cache_entries) if opts.prefix_reuse else None
        self.capabilities = Capabilities(
            prefix_reuse=opts.prefix_reuse,
            constraint="mask",
            constraint_types=CONSTRAINT_TYPES,
        )

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_special, special=add_special)

    def tokenize_markup(self, text: str) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self._llama.detokenize(list(token_ids)).decode("utf-8", errors="replace")

    def detokenizer(self) -> Detokenizer:
        return ByteDetokenizer(self._piece)

    def _piece(self, token: int) -> bytes:
        return self._token_to_piece(token).rstrip(b"\0")

    def run(self, request: Request) -> Iterator[Token | Prefill | Finish]:
        prompt = request.prompt_ids or ()
        prefix = self._prefix
        if prefix is not None:
            cached = prefix.prepare(prompt)
            if cached:
                yield Prefill(cached)
        constraint = self.grammar.constraint(request.constraint)
        tokens = self._tokens(prompt, request.params, fresh=prefix is None, constraint=constraint)
        try:
            yield from masked_events(tokens, constraint, request.facts)
        finally:
            if prefix is not None:
                prefix.remember()

    def _llguidance_tokenizer(self) -> LLTokenizer:
        from llguidance.llamacpp import lltokenizer_from_vocab

        with warnings.catch_warnings():  # it calls a deprecated alias once per token
            warnings.simplefilter("ignore", DeprecationWarning)
            return lltokenizer_from_vocab(self._llama._model.vocab, n_vocab=self._llama.n_vocab())

    def _tokens(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        fresh: bool = True,
        constraint: TokenConstraint | None = None,
    ) -> Generator[int, None, None]:
        llama = self._llama
        # A fresh state for every request unless prefix_reuse is on: reusing a cached prompt
        # prefix can change greedy output in llama.cpp (RUNTIME-NOTES).
        if fresh:
            llama.reset()  # type: ignore[no-untyped-call]
        llama.set_seed(params.seed if params.seed is not None else random.getrandbits(32))
        return llama.generate(
            list(prompt_ids),
            temp=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=params.repetition_penalty,
            reset=True,
            logits_processor=None if constraint is None else _masking(constraint),
        )

    def close(self) -> None:
        self._llama.close()


def _masking(constraint: TokenConstraint) -> Any:
    """llama-cpp-python's logits hook, applied before its samplers (greedy included)."""
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([lambda _ids, logits: constraint.apply(logits)])


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Silence llama.cpp's C-level stderr chatter while loading (it ignores verbose=False)."""
    if not enabled:
        yield
        return
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(fd, 2)
    finally:
        os.close(fd)


def direct_decode(engine: LlamaCppEngine, prompt_ids: list[int], n: int) -> Iterator[int]:
    """llama-cpp-python's own greedy loop on the engine's model, as its docs show: stops at
    end-of-generation, detokenizes each token. ``slmkit bench --overhead`` times it."""
    llama = engine._llama
    llama.reset()  # type: ignore[no-untyped-call]
    tokens = llama.generate(
        prompt_ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True
    )
    for made, token in enumerate(tokens, 1):
        if token in engine.eos_token_ids:
            return
        llama.detokenize([token])
        yield token
        if made >= n:
            return
