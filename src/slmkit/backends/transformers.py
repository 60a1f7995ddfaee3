"""Hugging Face transformers: checkpoint folders, hub ids in the HF cache, converted GGUFs.

Generation is a plain decode loop over the model's KV cache, one forward pass per
token, so each token streams as soon as it exists and closing the stream stops the
work at once. Sampling uses transformers' own logits processors, so temperature,
top_k, top_p and repetition_penalty mean what they mean in ``model.generate``.
"""

# transformers' public functions are partly unannotated.
# mypy: disallow-untyped-calls=False
from __future__ import annotations

import importlib.util
import random
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..artifacts import converted
from ..calibrate import Setting, thread_candidates, tuned
from ..catalog import HubArtifact, hfcache
from ..embeddings import encoder_checkpoint
from ..errors import (
    BackendUnavailable,
    InvalidModelFile,
    InvalidRequest,
    ModelNotFound,
    UnsupportedFeature,
)
from ..hostfacts import read_text
from ..structured import CONSTRAINT_TYPES
from ._masked import GrammarTokenizer, masked_events
from ._prefix_pool import PrefixPool
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
    import torch
    from llguidance import LLTokenizer
    from transformers import DynamicCache

    from ..params import GenerationParams
    from ..probe import HardwareReport
    from ..structured import TokenConstraint

__all__ = ["TransformersBackend", "TransformersEngine", "TransformersOptions"]

_DTYPES = ("auto", "float32", "float16", "bfloat16")


class TransformersOptions(BaseModel):
    """Options for backend="transformers"."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(
        None, ge=16, description="Context window; default: the catalog's, capped by the model's."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto picks cuda, then mps, then cpu."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: float32 on CPU, bfloat16 (else float16) on GPU."
    )
    device_map: str | None = Field(
        None, description='Passed to from_pretrained; default "auto" on CUDA with accelerate.'
    )
    quantization: Literal["8bit", "4bit"] | None = Field(
        None, description="bitsandbytes weight quantization; CUDA only."
    )
    trust_remote_code: bool = Field(False, description="Run model code shipped with the repo.")
    use_fast: bool = Field(True, description="Use the Rust (tokenizers) tokenizer.")
    add_special_tokens: bool = Field(
        True, description="Let the tokenizer add BOS/EOS to prompts as the model wants."
    )
    n_threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads (process-wide); default: measured at first load.",
    )
    calibrate: bool = Field(
        True, description="Measure the thread default on first load (SLMKIT_CALIBRATE=0: never)."
    )
    prefix_reuse: bool = Field(
        False,
        description="Keep the KV cache of recent requests and evaluate only the part of a "
        "prompt it does not hold (conversations, shared system prompts); not for models with "
        "sliding-window layers. Off by default (docs/conversations.md).",
    )
    prefix_cache_entries: int = Field(
        4, ge=0, le=64, description="KV caches kept for prefix_reuse (LRU)."
    )


class TransformersBackend(Backend):
    name = "transformers"
    extra = "transformers"
    packages = (("transformers", "transformers"), ("torch", "torch"))
    artifact_format = "hf"
    description = "Hugging Face transformers (PyTorch); CPU, CUDA, MPS, bitsandbytes 8/4-bit"
    options_model = TransformersOptions
    embeds = True

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        torch_build = report.builds.get(cls.name)
        if report.nvidia and torch_build == "cuda":
            return 85, f"NVIDIA {report.nvidia[0].name}: torch CUDA build"
        if report.rocm and torch_build == "hip":
            return 85, "AMD GPU: torch ROCm build"
        if report.apple_silicon:
            return 30, "Apple silicon: torch on MPS, behind MLX and llama.cpp"
        reason = "CPU: transformers fp32 is ~7x slower than the int4 runtimes"
        if report.nvidia:
            reason += "; the installed torch is a CPU build"
        return 20, reason

    @classmethod
    def runtime_build(
        cls, folder_of: Callable[[str], Path | None], installed: Callable[[str], bool]
    ) -> str | None:
        """torch's build, from ``torch/version.py`` (``cuda = "12.8"``, ``hip = ...``)."""
        folder = folder_of("torch")
        if folder is None:
            return None
        text = read_text(folder / "version.py")
        for build in ("cuda", "hip"):
            if re.search(rf"^{build}\s*(:[^=]*)?=\s*['\"]", text, re.MULTILINE):
                return build
        return "cpu"

    def load(self, model: ModelRef, options: TransformersOptions) -> Engine:
        opts = options
        device = _pick_device(opts.device)
        encoder = encoder_checkpoint(model)
        if encoder is not None:
            from ..embeddings.transformers import TransformersEncoder

            return TransformersEncoder(encoder, device, opts)
        if opts.quantization is not None:
            _check_quantization(opts.quantization, device)
        folder = resolve_checkpoint(model)
        default_ctx = model.default_context

        def with_threads(setting: Setting, loaded: TransformersEngine | None) -> TransformersEngine:
            """torch's thread count changes in place: one model load for every candidate."""
            import torch

            if "n_threads" in setting:
                torch.set_num_threads(setting["n_threads"])
            return loaded or TransformersEngine(folder, device, default_ctx, opts)

        return tuned(
            type(self),
            model.name,
            folder,
            {"device": device, "dtype": opts.dtype, "quantization": opts.quantization},
            {"n_threads": opts.n_threads},
            thread_candidates("n_threads", runtime_default=False) if device == "cpu" else [],
            with_threads,
            enabled=opts.calibrate,
        )


def resolve_checkpoint(model: ModelRef) -> Path:
    """A checkpoint folder for a path, a catalog alias, a .gguf file, or a hub id."""
    if model.path is not None:
        if model.path.is_dir():
            if not (model.path / "config.json").is_file():
                raise ModelNotFound(
                    f"{model.path} is not a transformers checkpoint (no config.json); "
                    "pass a checkpoint folder, a .gguf file or a catalog alias"
                )
            return model.path
        if model.path.suffix == ".gguf":
            return converted(str(model.path), "hf", "transformers")
        raise ModelNotFound(f"{model.path} is neither a checkpoint folder nor a .gguf file")
    spec = model.spec
    if spec is not None:
        if spec.packaged is not None:
            # The offline GGUF, converted once: the same weights every local backend runs.
            return converted(spec.alias, "hf", "transformers")
        if "hf" in spec.hub:
            return hfcache.resolve(spec.hub["hf"], f"{spec.alias} (transformers checkpoint)", "hf")
        raise ModelNotFound(f"{spec.alias} has no transformers checkpoint; try another backend")
    if "/" in model.name:
        return hfcache.resolve(HubArtifact(model.name), model.name, "hf")
    raise ModelNotFound(
        f"unknown model {model.name!r}: use a catalog alias (slmkit models), a checkpoint "
        "folder, a .gguf file, or a hub repo id in the Hugging Face cache"
    )


def _pick_device(wanted: str) -> str:
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if wanted == "cuda" and not cuda:
        build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
        raise BackendUnavailable(
            f"backend 'transformers' device='cuda': torch {torch.__version__} has {build}; "
            "install a CUDA build of torch (docs/backends/transformers.md) or use device='cpu'"
        )
    if wanted == "mps" and not mps:
        raise BackendUnavailable(
            "backend 'transformers' device='mps': Apple Metal is not available here; "
            "use device='cpu'"
        )
    return wanted


def _check_quantization(mode: str, device: str) -> None:
    if device != "cuda":
        raise UnsupportedFeature(
            f"backend 'transformers' option quantization={mode!r} needs a CUDA GPU "
            f"(bitsandbytes); the device here is {device!r}. Leave quantization unset, or use "
            "backend='llamacpp', 'onnx' or 'openvino' for quantized CPU inference"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise BackendUnavailable(
            f"backend 'transformers' option quantization={mode!r} needs bitsandbytes, "
            "which is not installed: pip install bitsandbytes"
        )


def _torch_dtype(name: str, device: str) -> torch.dtype:
    import torch

    if name != "auto":
        return getattr(torch, name)  # type: ignore[no-any-return]
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32  # CPU: fastest without AMX, and exact to the checkpoint


class TransformersEngine(TokenEngine):
    def __init__(
        self, folder: Path, device: str, default_ctx: int, opts: TransformersOptions
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        logging.disable_progress_bar()
        if opts.n_threads is not None:
            torch.set_num_threads(opts.n_threads)
        dtype = _torch_dtype(opts.dtype, device)
        kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": opts.trust_remote_code}
        device_map: str | dict[str, int] | None = opts.device_map
        if device_map is None and device == "cuda" and importlib.util.find_spec("accelerate"):
            device_map = "auto"
        if device_map is None and opts.quantization is not None:
            device_map = {"": 0}  # bitsandbytes weights are placed at load time, on the GPU
        if device_map is not None:
            kwargs["device_map"] = device_map
        if opts.quantization is not None:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_8bit=opts.quantization == "8bit",
                load_in_4bit=opts.quantization == "4bit",
                bnb_4bit_compute_dtype=dtype,
            )
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(
                folder, use_fast=opts.use_fast, trust_remote_code=opts.trust_remote_code
            )
            model: Any = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidModelFile(
                f"transformers could not load {folder} ({type(exc).__name__}: {exc}); "
                "check the folder, upgrade transformers, or pass trust_remote_code=True for "
                "models that ship their own code"
            ) from exc
        if device_map is None and opts.quantization is None:
            model = model.to(device)
        self._model: Any = model.eval()
        self._torch_device = next(model.parameters()).device
        self.artifact = str(folder)
        self.device = self._torch_device.type
        self.dtype = str(dtype).removeprefix("torch.")
        trained = getattr(model.config, "max_position_embeddings", None)
        if opts.context_length and isinstance(trained, int) and opts.context_length > trained:
            raise InvalidRequest(
                f"context_length={opts.context_length} is more than this model's {trained} "
                f"positions; pass context_length <= {trained}",
                field="context_length",
            )
        max_positions = trained or default_ctx
        self.context_length = opts.context_length or min(default_ctx, max_positions)
        self._setup_tokens(opts.add_special_tokens)
        self.grammar = GrammarTokenizer(self._llguidance_tokenizer)
        self._prefix = self._prefix_pool(opts) if opts.prefix_reuse else None
        self.capabilities = Capabilities(
            prefix_reuse=opts.prefix_reuse, constraint="mask", constraint_types=CONSTRAINT_TYPES
        )

    def _prefix_pool(self, opts: TransformersOptions) -> PrefixPool[DynamicCache]:
        from transformers import DynamicCache, DynamicLayer

        layers = DynamicCache(config=self._model.config).layers
        if not all(type(layer) is DynamicLayer for layer in layers):
            raise UnsupportedFeature(
                "transformers: prefix_reuse=True needs a model whose every layer keeps its "
                "whole KV cache; this one has sliding-window (or other) layers that cannot be "
                "cut back to a shared prefix. Leave prefix_reuse off for it"
            )
        return PrefixPool(opts.prefix_cache_entries, self._fork)

    def _fork(self, cache: DynamicCache, keep: int) -> DynamicCache:
        """A new cache holding the first ``keep`` positions of ``cache`` (left as it was)."""
        import torch
        from transformers import DynamicCache

        fork = DynamicCache(config=self._model.config)
        layers: list[Any] = list(cache.layers)  # every one a DynamicLayer (_prefix_pool)
        with torch.inference_mode():
            for index, layer in enumerate(layers):
                fork.update(layer.keys[..., :keep, :], layer.values[..., :keep, :], index)
        return fork

    def _setup_tokens(self, add_special_tokens: bool) -> None:
        tok = self._tokenizer
        template = tok.chat_template
        if isinstance(template, dict):  # several named templates: the default one
            template = template.get("default") or next(iter(template.values()), None)
        self.chat_template = template or None
        self._add_special = add_special_tokens
        self.bos_token = tok.bos_token or ""
        self.eos_token = tok.eos_token or ""
        with_special = tok("a", add_special_tokens=True)["input_ids"]
        plain = tok("a", add_special_tokens=False)["input_ids"]
        self.adds_bos = add_special_tokens and (
            tok.bos_token_id is not None
            and len(with_special) > len(plain)
            and with_special[0] == tok.bos_token_id
        )
        eos: set[int] = set()
        for source in (self._model.generation_config.eos_token_id, tok.eos_token_id):
            for value in source if isinstance(source, list) else [source]:
                if isinstance(value, int):
                    eos.add(value)
        self.eos_token_ids = frozenset(eos)

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        ids = self._tokenizer(
            text,
            add_special_tokens=add_special and self._add_special,
            split_special_tokens=not add_special,
        )["input_ids"]
        return list(ids)

    def tokenize_markup(self, text: str) -> list[int]:
        ids = self._tokenizer(text, add_special_tokens=False, split_special_tokens=False)
        return list(ids["input_ids"])

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def run(self, request: Request) -> Iterator[Token | Prefill | Finish]:
        prompt = request.prompt_ids or ()
        cache, cached = None, 0
        if self._prefix is not None:
            cache, cached = self._prefix.take(prompt)
            if cached:
                yield Prefill(cached)
        constraint = self.grammar.constraint(request.constraint)
        tokens = self.generate_tokens(prompt, request.params, constraint, cache, cached)
        yield from masked_events(tokens, constraint, request.facts)

    def _llguidance_tokenizer(self) -> LLTokenizer:
        from llguidance.hf import from_tokenizer

        if not self._tokenizer.is_fast:
            raise UnsupportedFeature(
                "transformers: response_format needs a fast tokenizer (llguidance reads its "
                "vocabulary); load without use_fast=False"
            )
        # the logits row can be wider than the tokenizer (Qwen pads it): size the mask to it
        return from_tokenizer(self._tokenizer, n_vocab=self._model.config.vocab_size)

    def generate_tokens(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        constraint: TokenConstraint | None = None,
        cache: DynamicCache | None = None,
        cached: int = 0,
    ) -> Generator[int, None, None]:
        """The decode loop on its own (token ids out); run() wraps it in events.

        ``cache``: a KV cache holding at least the first ``cached`` prompt tokens (prefix
        reuse), cut back to them; only the rest of the prompt is evaluated. With prefix
        reuse on, the cache goes back to the pool afterwards under the tokens it holds.
        """
        import torch
        from transformers import DynamicCache

        model = self._model
        device = self._torch_device
        processors = _logits_processors(params)
        generator = None
        if not params.greedy:
            generator = torch.Generator(device=device)
            generator.manual_seed(
                params.seed if params.seed is not None else random.getrandbits(32)
            )
        seen = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
        if cache is None:
            cache, cached = DynamicCache(config=model.config), 0
        else:
            cache.crop(cached - cache.get_seq_length())
        step_ids = seen[:, cached:]
        held = list(prompt_ids)  # the tokens whose KV the cache holds once step_ids ran
        try:
            while True:
                token = self._step(cache, step_ids, seen, processors, generator, constraint)
                if params.repetition_penalty != 1.0:
                    seen = torch.cat([seen, token], dim=-1)
                step_ids = token
                token_id = int(token.item())
                yield token_id
                held.append(token_id)
        finally:
            if self._prefix is not None and cache.get_seq_length() == len(held):
                self._prefix.put(held, cache)

    def _step(
        self,
        cache: DynamicCache,
        step_ids: torch.Tensor,
        seen: torch.Tensor,
        processors: Any,
        generator: torch.Generator | None,
        constraint: TokenConstraint | None,
    ) -> torch.Tensor:
        """One forward pass over ``step_ids`` and the next token, shape (1, 1)."""
        import torch

        with torch.inference_mode():
            out = self._model(
                input_ids=step_ids, past_key_values=cache, use_cache=True, logits_to_keep=1
            )
            scores = out.logits[:, -1, :].float()
            if constraint is not None:  # before the samplers, as llama.cpp applies it
                row = constraint.apply(scores[0].cpu().numpy())
                scores[0] = torch.from_numpy(row).to(scores.device)
            if processors:
                scores = processors(seen, scores)
            if generator is None:
                return scores.argmax(dim=-1, keepdim=True)
            probs = torch.softmax(scores, dim=-1)
            return torch.multinomial(probs, 1, generator=generator)

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._prefix = None


def _logits_processors(params: GenerationParams) -> Any:
    """transformers' own processors, in model.generate's order; empty for plain greedy."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if params.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if not params.greedy:
        if params.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            processors.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            processors.append(TopPLogitsWarper(params.top_p))
    return processors
