"""Apple MLX through mlx-lm: Metal on Apple silicon, the CPU build (mlx-cpu) on Linux.

Reads an MLX model folder, a transformers checkpoint folder (mlx-lm loads those
as they are), a hub id found in the Hugging Face cache (the mlx-community repos),
or a catalog alias. For an alias it takes, in order: a cached ``slmkit convert
--to mlx`` artifact, the catalog's MLX repo in the HF cache, then the model's
transformers checkpoint (cached ``--to hf`` conversion or HF cache) as it is.
Tokens come from mlx-lm's ``generate_step``; the core owns everything else. Structured
output masks the logits through mlx-lm's ``logits_processors``: mlx-lm computes step n+1
before it hands out token n, so the processor itself advances the grammar by the tokens
it is shown (``masked_events(..., advance=False)``). With ``prefix_reuse`` the prompt
caches (mlx-lm's ``make_prompt_cache``) are kept in a :class:`PrefixPool`, forked at the
shared prefix, and continued with ``generate_step(prompt_cache=...)``.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import (
    BackendUnavailable,
    InvalidModelFile,
    InvalidRequest,
    ModelNotFound,
    UnsupportedFeature,
)
from ..probe import has_distribution
from ..structured import CONSTRAINT_TYPES
from ._masked import GrammarTokenizer, masked_events
from ._prefix_pool import PrefixPool
from .base import (
    Availability,
    Backend,
    Capabilities,
    Finish,
    ModelRef,
    Prefill,
    Request,
    Token,
    TokenEngine,
)

if TYPE_CHECKING:
    from llguidance import LLTokenizer

    from ..catalog import ModelSpec
    from ..probe import HardwareReport
    from ..structured import TokenConstraint

__all__ = ["MlxBackend", "MlxEngine", "MlxOptions"]

#: Distributions that give the ``mlx`` package its native library on Linux.
_LINUX_BUILDS = {"mlx-cpu": "CPU", "mlx-cuda-12": "CUDA", "mlx-cuda-13": "CUDA"}


class MlxOptions(BaseModel):
    """Options of backend ``mlx``."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(
        None,
        ge=16,
        description="Context window (prompt + new tokens). Default: the catalog's default "
        "context for an alias, else the model's max_position_embeddings.",
    )
    bits: Literal[4, 8, 16] | None = Field(
        None,
        description="For a catalog alias: which `slmkit convert --to mlx --bits N` artifact "
        "to load (16 = bfloat16). Default: the first one cached, else the transformers "
        "checkpoint as it is.",
    )
    prefix_reuse: bool = Field(
        False,
        description="Keep recent prompt caches and evaluate only the part of a prompt they "
        "do not hold (conversations, shared system prompts); refused for models with "
        "sliding-window layers. Off by default (docs/conversations.md).",
    )
    prefix_cache_entries: int = Field(
        4, ge=0, le=64, description="Prompt caches kept for prefix_reuse (LRU)."
    )


class MlxBackend(Backend):
    name = "mlx"
    extra = "mlx"
    packages = (("mlx_lm", "mlx-lm"), ("mlx", "mlx"))
    artifact_format = "mlx"
    description = "Apple MLX via mlx-lm: Metal on Apple silicon, CPU build on Linux"
    options_model = MlxOptions

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        if report.apple_silicon:
            return 100, "Apple silicon: MLX on Metal is the leading runtime"
        return 5, "CPU: MLX without Metal uses a reference BLAS on one core (~5 tok/s)"

    @classmethod
    def missing_package(cls) -> tuple[str, str] | None:
        missing = super().missing_package()
        if missing is not None:
            return missing
        # Distribution metadata, not imports: on Linux mlx-cpu alone makes an importable
        # (namespace) "mlx" folder, and mlx alone has no native library.
        if not has_distribution("mlx"):
            return "mlx.core", "mlx"
        if platform.system() == "Linux" and not any(has_distribution(d) for d in _LINUX_BUILDS):
            return "mlx.core", "mlx-cpu"
        return None

    @classmethod
    def check(cls, hardware: Any = None) -> Availability:
        """Metal on Apple silicon, CPU (or CUDA) on Linux; never imports mlx. The platform
        is ``hardware``'s (a HardwareReport) when given, so a recorded machine ranks right."""
        system, machine = _platform(hardware)
        if system == "Darwin" and machine != "arm64":
            return Availability(
                cls.missing_package() is None,
                False,
                f"MLX needs Apple silicon; this Mac is {machine}",
            )
        if system not in ("Darwin", "Linux"):
            return Availability(False, False, f"MLX has no build for {system or 'this platform'}")
        missing = cls.missing_package()
        if missing is not None:
            return Availability(
                False, False, f'needs {missing[1]}: pip install "slmkit[{cls.extra}]"'
            )
        if system == "Darwin":
            return Availability(True, True, "Metal (Apple silicon)")
        build = next(
            (kind for dist, kind in _LINUX_BUILDS.items() if has_distribution(dist)), "CPU"
        )
        if build == "CPU":
            return Availability(True, True, "Linux CPU build (mlx-cpu): correct but slow")
        return Availability(True, True, f"Linux {build} build")

    def load(self, model: ModelRef, options: MlxOptions) -> MlxEngine:
        self.require()
        availability = self.check()
        if not availability.usable:
            raise BackendUnavailable(f"backend 'mlx' cannot run here: {availability.reason}")
        opts = options
        path = _artifact(model, opts.bits)
        context = opts.context_length or (model.spec.default_context if model.spec else None)
        return MlxEngine(path, context, opts.prefix_cache_entries if opts.prefix_reuse else None)


def _platform(hardware: Any) -> tuple[str, str]:
    """(platform.system(), machine) of ``hardware`` when it is a report, else of this machine."""
    if hardware is not None and hasattr(hardware, "os"):
        system = {"darwin": "Darwin", "linux": "Linux", "windows": "Windows"}.get(hardware.os)
        return system or hardware.os, hardware.arch
    return platform.system(), platform.machine().lower()


def _artifact(model: ModelRef, bits: int | None) -> Path:
    """The folder mlx-lm should load for ``model``."""
    from ..catalog import HubArtifact, hfcache

    if model.path is not None:
        if not (model.path / "config.json").is_file():
            kind = "GGUF file" if model.path.suffix == ".gguf" else "folder without config.json"
            raise InvalidModelFile(
                f"backend 'mlx' reads MLX or transformers model folders; {model.path} is a "
                f"{kind}: run `slmkit convert {model.name} --to mlx` and load that"
            )
        return model.path
    if model.spec is not None:
        return _alias_artifact(model.spec, bits)
    if bits is not None:
        raise InvalidRequest(
            "option bits= picks a converted artifact of a catalog alias; "
            f"{model.name!r} is a hub id, loaded as it is",
            field="bits",
        )
    return hfcache.resolve(HubArtifact(model.name), f"model {model.name!r}", "mlx")


def _alias_artifact(spec: ModelSpec, bits: int | None) -> Path:
    from ..artifacts import cached, converted
    from ..catalog import hfcache

    if spec.packaged is not None:
        for candidate in (bits,) if bits else (4, 8, 16):
            found = cached(spec.alias, "mlx", bits=candidate)
            if found is not None:
                return found
    repo = spec.hub.get("mlx")
    if repo is not None and bits in (None, 4):  # the mlx-community repos are 4-bit
        found = hfcache.find_cached(repo, "mlx")
        if found is not None:
            return found
    if bits is None:
        found = cached(spec.alias, "hf") if spec.packaged is not None else None
        if found is None and "hf" in spec.hub:
            found = hfcache.find_cached(spec.hub["hf"], "hf")
        if found is not None:
            return found
    if spec.packaged is None and repo is not None:
        return hfcache.resolve(repo, f"{spec.alias} in MLX format", "mlx")
    if spec.packaged is None:
        raise ModelNotFound(
            f"{spec.alias} has no MLX model and no offline GGUF to convert: download its "
            "checkpoint and load that folder, or use another backend (slmkit models)"
        )
    return converted(spec.alias, "mlx", "mlx", f"--bits {bits or 4}", bits=bits or 4)


def _config_int(path: Path, key: str) -> int | None:
    """A positive integer of the folder's config.json (or its text_config), else None."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}):
        value = section.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


class MlxEngine(TokenEngine):
    """One model loaded by mlx-lm; generation through ``mlx_lm.generate.generate_step``."""

    def __init__(
        self, path: Path, context_length: int | None = None, prefix_entries: int | None = None
    ) -> None:
        """``prefix_entries``: prompt caches kept for prefix reuse; None: reuse off."""
        import mlx.core as mx
        from mlx_lm import load

        try:
            loaded = load(str(path))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidModelFile(
                f"mlx-lm cannot load {path}: {type(exc).__name__}: {exc}; pass an MLX or "
                f"transformers model folder of an architecture mlx-lm supports"
            ) from exc
        self._model, self._tokenizer = loaded[0], loaded[1]
        self.artifact = str(path)
        self.device = _device_name(mx.default_device())
        limit = _config_int(path, "max_position_embeddings")
        if context_length is not None and limit is not None and context_length > limit:
            raise InvalidRequest(
                f"context_length={context_length} is more than this model's "
                f"{limit} positions; pass context_length <= {limit}",
                field="context_length",
            )
        self.context_length = context_length or limit or 4096
        hf = self._tokenizer._tokenizer  # the transformers tokenizer mlx-lm wraps
        self.chat_template = getattr(hf, "chat_template", None) or None
        self.bos_token = hf.bos_token or ""
        self.eos_token = hf.eos_token or ""
        self.eos_token_ids = frozenset(self._tokenizer.eos_token_ids)
        probe = hf.encode("a", add_special_tokens=True)
        self.adds_bos = hf.bos_token_id is not None and probe[:1] == [hf.bos_token_id]
        self.grammar = GrammarTokenizer(self._llguidance_tokenizer)
        self._prefix = self._prefix_pool(prefix_entries) if prefix_entries is not None else None
        self.capabilities = Capabilities(
            prefix_reuse=self._prefix is not None,
            constraint="mask",
            constraint_types=CONSTRAINT_TYPES,
        )

    def _prefix_pool(self, entries: int) -> PrefixPool[list[Any]]:
        from mlx_lm.models.cache import KVCache, make_prompt_cache

        if not all(type(layer) is KVCache for layer in make_prompt_cache(self._model)):
            raise UnsupportedFeature(
                "mlx: prefix_reuse=True needs a model whose every layer keeps its whole KV "
                "cache; this one has sliding-window (or other) layers that cannot be cut back "
                "to a shared prefix. Leave prefix_reuse off for it"
            )
        return PrefixPool(entries, _fork)

    def _llguidance_tokenizer(self) -> LLTokenizer:
        from llguidance.hf import from_tokenizer

        # the logits row can be wider than the tokenizer (Qwen pads it): size the mask to it
        width = _config_int(Path(self.artifact), "vocab_size")
        return from_tokenizer(self._tokenizer._tokenizer, n_vocab=width)

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        hf = self._tokenizer._tokenizer
        if add_special:
            return list(hf.encode(text, add_special_tokens=True))
        return list(hf.encode(text, add_special_tokens=False, split_special_tokens=True))

    def tokenize_markup(self, text: str) -> list[int]:
        return list(self._tokenizer._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def run(self, request: Request) -> Iterator[Token | Prefill | Finish]:
        prompt = list(request.prompt_ids or ())
        cache, cached = None, 0
        # the repetition penalty reads the tokens generate_step evaluates: all of them
        if self._prefix is not None and request.params.repetition_penalty == 1.0:
            cache, cached = self._prefix.take(prompt)
            if cached:
                yield Prefill(cached)
        constraint = self.grammar.constraint(request.constraint)
        tokens = self._tokens(request, constraint, cache, cached)
        yield from masked_events(tokens, constraint, request.facts, advance=False)

    def _tokens(
        self,
        request: Request,
        constraint: TokenConstraint | None,
        cache: list[Any] | None,
        cached: int,
    ) -> Generator[int, None, None]:
        """``cache``: a prompt cache holding at least the first ``cached`` prompt tokens,
        cut back to them; only the rest of the prompt is evaluated. With prefix reuse on,
        the cache goes back to the pool afterwards under the tokens it holds."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step, generation_stream, wired_limit
        from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        params = request.params
        if params.seed is not None:
            mx.random.seed(params.seed)
        sampler = make_sampler(
            temp=params.temperature,
            top_p=params.top_p,  # 1.0 disables it there too
            top_k=params.top_k,
        )
        processors = (
            make_logits_processors(
                repetition_penalty=params.repetition_penalty,
                # The whole sequence, as transformers does; mlx-lm's default is 20 tokens.
                repetition_context_size=self.context_length,
            )
            if params.repetition_penalty != 1.0
            else []
        )
        prompt = list(request.prompt_ids or ())
        if cache is None:
            cache, cached = make_prompt_cache(self._model), 0
        else:
            trim_prompt_cache(cache, cache[0].offset - cached)
        if constraint is not None:  # last: the mask sees the penalised logits
            processors.append(_GrammarMask(constraint, len(prompt) - cached))
        held = list(prompt)  # the tokens whose KV the cache holds
        streams: list[Any] = [generation_stream]  # as stream_generate passes it
        with wired_limit(self._model, streams):
            steps = generate_step(
                mx.array(prompt[cached:]),
                self._model,
                max_tokens=params.max_tokens,
                sampler=sampler,
                logits_processors=processors or None,
                prompt_cache=cache,
            )
            try:
                for token, _logprobs in steps:
                    held.append(int(token))  # fed back before it is handed out
                    yield int(token)
            finally:
                steps.close()
                if self._prefix is not None and cache[0].offset == len(held):
                    self._prefix.put(held, cache)

    def close(self) -> None:
        import mlx.core as mx

        self._prefix = None
        self._model = None
        mx.clear_cache()


class _GrammarMask:
    """An mlx-lm logits processor: advances the grammar by the tokens sampled since its
    last call (``tokens`` holds the prompt and every token so far), then masks the row."""

    def __init__(self, constraint: TokenConstraint, prompt_length: int) -> None:
        self._constraint = constraint
        self._seen = prompt_length

    def __call__(self, tokens: Any, logits: Any) -> Any:
        import mlx.core as mx
        import numpy as np

        for token in tokens[self._seen :].tolist():
            self._constraint.consume(int(token))
        self._seen = int(tokens.size)
        row = np.array(logits.astype(mx.float32)).reshape(-1)
        return mx.array(self._constraint.apply(row)).reshape(logits.shape).astype(logits.dtype)


def _fork(cache: list[Any], keep: int) -> list[Any]:
    """A new prompt cache holding the first ``keep`` positions of ``cache`` (left as it was;
    every layer a KVCache: _prefix_pool)."""
    from mlx_lm.models.cache import KVCache

    fork = []
    for layer in cache:
        copy = KVCache()  # type: ignore[no-untyped-call]
        copy.keys, copy.values = layer.keys[..., :keep, :], layer.values[..., :keep, :]
        copy.offset = keep
        fork.append(copy)
    return fork


def _device_name(device: Any) -> str:
    if "gpu" not in str(device).lower():
        return "cpu"
    return "metal" if platform.system() == "Darwin" else "cuda"


def direct_decode(engine: MlxEngine, prompt_ids: list[int], n: int) -> Iterator[int]:
    """mlx-lm's own ``stream_generate`` (greedy) on the engine's model: it stops at EOS and
    detokenizes each token itself. ``slmkit bench --overhead`` times it against slmkit."""
    import mlx.core as mx
    from mlx_lm import stream_generate

    responses = stream_generate(engine._model, engine._tokenizer, mx.array(prompt_ids), n)
    try:
        for response in responses:
            if response.finish_reason == "stop":  # the EOS token, which it does not emit
                return
            yield int(response.token)
    finally:
        responses.close()
