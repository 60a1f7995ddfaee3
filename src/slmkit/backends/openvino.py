"""OpenVINO GenAI: OpenVINO IR folders on Intel CPUs, GPUs and NPUs.

Token ids go in and come out, so the core's template, stop-sequence and length policy
applies unchanged: ``LLMPipeline.generate`` gets the prompt ids as a tensor (its own chat
template never runs) and a streamer that hands each generated id to the caller. The
pipeline call blocks, so it runs in a worker thread (it releases the GIL while it
computes); closing the token iterator makes the streamer answer ``STOP`` and waits for
the pipeline to return, so the model is free again before the lock is released.

Prefix reuse is OpenVINO's own (``SchedulerConfig.enable_prefix_caching``, on by default in
its LLMPipeline on CPU and GPU): it keeps KV blocks between requests and says nothing of
what it found, so ``cached_tokens`` is slmkit's estimate (:class:`PrefixLedger`).
"""

from __future__ import annotations

import json
import queue
import random
import threading
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._metadata import int_member
from .._prompt import encode_plain, special_token_strings
from ..artifacts import converted
from ..calibrate import reloading, thread_candidates, tuned
from ..catalog import HubArtifact, hfcache
from ..embeddings import encoder_export
from ..errors import (
    BackendUnavailable,
    InvalidModelFile,
    InvalidRequest,
    ModelNotFound,
    UnsupportedSchema,
)
from ._json_ebnf import json_schema_ebnf
from ._openvino_batching import StepLoop, kv_block, scheduler_config
from ._prefix_pool import PrefixLedger
from .base import Backend, Capabilities, Engine, ModelRef, Prefill, Request, Token, TokenEngine

if TYPE_CHECKING:
    from ..params import GenerationParams
    from ..probe import HardwareReport
    from ..structured import ResponseFormat

__all__ = ["OpenVINOBackend", "OpenVINOEngine", "OpenVINOOptions"]

MODEL_FILE = "openvino_model.xml"
#: The response_format types OpenVINO's own structured output (xgrammar) applies; a lark
#: grammar has no translation to its EBNF, so "grammar" is refused by name.
NATIVE_CONSTRAINTS = frozenset({"json_schema", "json_object", "regex"})
TOKENIZER_FILES = ("openvino_tokenizer.xml", "openvino_detokenizer.xml")
DEVICES = ("CPU", "GPU", "NPU", "AUTO")


class OpenVINOOptions(BaseModel):
    """Options for backend="openvino"."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(
        None, ge=16, description="Context window; default: the catalog's, else the model's."
    )
    device: str | None = Field(
        None,
        description="CPU, GPU, NPU or AUTO (or an indexed one such as GPU.1); "
        "default: GPU when OpenVINO sees one, else CPU.",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="CPU inference threads; default: measured at first load (OpenVINO's "
        "own choice or 1..physical cores, whichever decodes fastest).",
    )
    calibrate: bool = Field(
        True, description="Measure the thread default on first load (SLMKIT_CALIBRATE=0: never)."
    )
    weight_format: Literal["int4", "int8", "fp16"] = Field(
        "int4", description="Which converted variant of a catalog model or GGUF to load."
    )
    cache_dir: str | None = Field(
        None, description="OpenVINO compiled-model cache (speeds up GPU/NPU loads)."
    )
    continuous_batching: bool = Field(
        False,
        description="Run concurrent requests together (OpenVINO's ContinuousBatchingPipeline): "
        "eight answers at once cost little more per step than one; serve with --parallel N.",
    )
    kv_cache_gb: int = Field(
        1, ge=1, description="KV-cache memory shared by the batched requests (whole GB)."
    )
    warmup: bool = Field(
        True,
        description="Generate one token at load, so the first request does not pay "
        "OpenVINO's first-inference set-up (seconds on a small CPU).",
    )
    prefix_reuse: bool = Field(
        True,
        description="OpenVINO's prefix caching: KV blocks stay between requests and a prompt "
        "that starts like an earlier one evaluates only the rest (on by default, as in "
        "OpenVINO's own LLMPipeline; CPU and GPU). False evaluates every prompt in full.",
    )
    prefix_cache_entries: int = Field(
        16,
        ge=0,
        le=256,
        description="Token sequences slmkit remembers to estimate cached_tokens (LRU); "
        "OpenVINO's blocks are bounded by its KV cache, not by this.",
    )


class OpenVINOBackend(Backend):
    name = "openvino"
    extra = "openvino"
    packages = (("openvino_genai", "openvino-genai"),)
    artifact_format = "openvino"
    description = "OpenVINO GenAI (OpenVINO IR); Intel CPU, GPU and NPU"
    options_model = OpenVINOOptions
    embeds = True

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        if "GPU" in report.openvino_devices:
            return 92, "Intel GPU: OpenVINO runs on it (device GPU)"
        if "NPU" in report.openvino_devices:
            return 88, "Intel NPU: OpenVINO runs on it (device NPU)"
        if report.apple_silicon:
            return 15, "Apple silicon: OpenVINO runs on the CPU only"
        if report.arch == "arm64":
            return 40, "CPU: OpenVINO's CPU plugin is tuned for x86 more than ARM"
        return 65, "CPU: OpenVINO int4 is second on x86 CPU (~100 / ~60 tok/s)"

    def load(self, model: ModelRef, options: OpenVINOOptions) -> Engine:
        opts = options
        encoder = encoder_export(model, _encoder_precision(opts.weight_format), self.name)
        if encoder is not None:
            from ..embeddings.openvino import OpenVINOEncoder

            return OpenVINOEncoder(encoder, choose_device(opts.device), opts.num_threads)
        folder = resolve_ir(model, opts.weight_format)
        device = choose_device(opts.device)
        context = _context_length(folder, model, opts)
        return tuned(
            type(self),
            model.name,
            folder,
            {"device": device},
            {"num_threads": opts.num_threads},
            thread_candidates("num_threads", runtime_default=True) if device == "CPU" else [],
            reloading(lambda s: OpenVINOEngine(folder, device, context, opts.model_copy(update=s))),
            enabled=opts.calibrate,
        )


def _encoder_precision(weight_format: str) -> str:
    """An embedding model runs from its ONNX export: fp32 unless int8 is asked for."""
    return "int8" if weight_format == "int8" else "fp32"


def resolve_ir(model: ModelRef, weight_format: str = "int4") -> Path:
    """The IR folder for a path, a catalog alias (converted or from the hub), or a hub id."""
    flags = "" if weight_format == "int4" else f"--weight-format {weight_format}"
    if model.path is not None:
        if model.path.is_dir() and (model.path / MODEL_FILE).is_file():
            return _check_ir(model.path)
        return _converted(str(model.path), weight_format, flags)
    spec = model.spec
    if spec is not None:
        if "openvino" in spec.hub:
            if spec.packaged is not None:
                found = hfcache.find_cached(spec.hub["openvino"], "openvino")
                if found is not None:
                    return _check_ir(found)
            else:
                hub = spec.hub["openvino"]
                return _check_ir(hfcache.resolve(hub, f"{spec.alias} (OpenVINO)", "openvino"))
        if spec.packaged is not None:
            return _converted(spec.alias, weight_format, flags)
        raise ModelNotFound(
            f"{spec.alias} has no OpenVINO IR in the catalog: convert its checkpoint with "
            f"`slmkit convert PATH --to openvino` and load that folder"
        )
    if "/" in model.name:
        return _check_ir(hfcache.resolve(HubArtifact(model.name), model.name, "openvino"))
    raise ModelNotFound(
        f"unknown model {model.name!r}: use a catalog alias (slmkit models), an OpenVINO IR "
        "folder, or a hub repo id (e.g. OpenVINO/Qwen2.5-0.5B-Instruct-int4-ov) in the HF cache"
    )


def _converted(model: str, weight_format: str, flags: str) -> Path:
    """An alias, GGUF file or checkpoint folder: its IR, by the one conversion rule."""
    return _check_ir(converted(model, "openvino", "openvino", flags, weight_format=weight_format))


def _check_ir(folder: Path) -> Path:
    if not (folder / MODEL_FILE).is_file():
        raise InvalidModelFile(
            f"{folder} is not an OpenVINO IR folder (no {MODEL_FILE}); export one with "
            "`slmkit convert MODEL --to openvino` or optimum-cli export openvino"
        )
    missing = [name for name in TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        raise InvalidModelFile(
            f"{folder} has no {' or '.join(missing)}: slmkit needs OpenVINO's own tokenizer; "
            f"make it with `convert_tokenizer {folder} --with-detokenizer -o {folder}` "
            "(pip install openvino-tokenizers)"
        )
    return folder


def available_devices() -> list[str]:
    """The devices OpenVINO can see here, e.g. ["CPU", "GPU.0", "GPU.1"]."""
    import openvino

    return list(openvino.Core().available_devices)


def choose_device(wanted: str | None) -> str:
    """The explicit device if present (an absent one is an error), else GPU when seen, else CPU."""
    present = available_devices()
    if wanted is None:
        return "GPU" if any(d.split(".")[0] == "GPU" for d in present) else "CPU"
    device = wanted.strip().upper()
    if device == "AUTO" or device.startswith(("AUTO:", "HETERO:", "MULTI:")):
        return device
    if device.split(".")[0] not in DEVICES:
        raise BackendUnavailable(
            f"backend 'openvino' has no device {wanted!r}; use one of: {', '.join(DEVICES)}"
        )
    if device in present or ("." not in device and any(d.split(".")[0] == device for d in present)):
        return device
    raise BackendUnavailable(
        f"backend 'openvino': device {device} is not present on this machine (OpenVINO sees "
        f"{', '.join(present) or 'no device'}); pass device='CPU' or leave device unset"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _context_length(folder: Path, model: ModelRef, opts: OpenVINOOptions) -> int:
    config = folder / "config.json"
    trained = int_member(_read_json(config), "max_position_embeddings", config)
    if opts.context_length is not None:
        if trained and opts.context_length > trained:
            raise InvalidRequest(
                f"context_length={opts.context_length} is more than this model's {trained} "
                f"positions; pass context_length <= {trained}",
                field="context_length",
            )
        return opts.context_length
    default = model.default_context
    return min(default, trained) if trained else default


def _chat_template(folder: Path, tokenizer: Any) -> str | None:
    """The model's own template: chat_template.jinja, tokenizer_config.json, else the IR's."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8") or None
    template = _read_json(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(template, str) and template:
        return template
    try:
        original = tokenizer.get_original_chat_template()
    except Exception:  # older openvino-genai: no such getter
        original = tokenizer.chat_template
    return original or None


_DONE = object()


class _Handoff:
    """Token ids from the pipeline's thread to the consumer, one in flight at most.

    The producer waits for room, so a slow or departed consumer never lets OpenVINO run
    ahead; once the consumer stops, ``put`` returns False and the streamer answers STOP.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self.stopped = threading.Event()

    def put(self, item: Any) -> bool:
        while not self.stopped.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        return self._queue.get()


def _token_streamer(handoff: _Handoff) -> Any:
    """A StreamerBase that feeds ``handoff`` (the class is built on first use: heavy import)."""
    global _STREAMER
    if _STREAMER is None:
        import openvino_genai

        running = openvino_genai.StreamingStatus.RUNNING
        stopped = openvino_genai.StreamingStatus.STOP

        class TokenStreamer(openvino_genai.StreamerBase):  # type: ignore[misc]
            def __init__(self, handoff: _Handoff) -> None:
                super().__init__()
                self._put = handoff.put

            def write(self, token: Any) -> Any:
                ids = (token,) if isinstance(token, int) else token
                for one in ids:
                    if not self._put(int(one)):
                        return stopped
                return running

            def end(self) -> None:
                pass

        _STREAMER = TokenStreamer
    return _STREAMER(handoff)


_STREAMER: Any = None


class OpenVINOEngine(TokenEngine):
    """One LLMPipeline and its tokenizer.

    ``info_extra["openvino"]`` (seen as ``LLM.info.extra``) holds the load time and device;
    each ``Completion.runtime["openvino"]["perf_metrics"]`` holds OpenVINO's own figures
    for that generation (TTFT, TPOT, throughput, inference duration in ms; input and
    generated tokens).
    """

    def __init__(self, folder: Path, device: str, context_length: int, opts: OpenVINOOptions):
        import openvino_genai

        properties: dict[str, Any] = {}
        if device == "CPU" and opts.num_threads is not None:
            properties["INFERENCE_NUM_THREADS"] = opts.num_threads
        if opts.cache_dir:
            properties["CACHE_DIR"] = opts.cache_dir
        start = perf_counter()
        self._steps: StepLoop | None = None
        block = kv_block(device)
        try:
            if opts.continuous_batching:
                scheduler = scheduler_config(openvino_genai, opts.prefix_reuse, opts.kv_cache_gb)
                self._pipe = openvino_genai.ContinuousBatchingPipeline(
                    str(folder), scheduler, device, properties
                )
                self._steps = StepLoop(self._pipe, openvino_genai.GenerationStatus.RUNNING)
            else:
                if block is not None and not opts.prefix_reuse:  # its default caches prefixes
                    properties["scheduler_config"] = scheduler_config(openvino_genai, False)
                self._pipe = openvino_genai.LLMPipeline(str(folder), device, **properties)
        except RuntimeError as exc:
            raise InvalidModelFile(
                f"OpenVINO GenAI could not load {folder} on {device} ({_first_line(exc)}); "
                "the IR may need a newer openvino-genai (pip install -U openvino-genai), or "
                "try device='CPU'"
            ) from exc
        self._metrics: dict[str, Any] = {"load_time_s": 0.0, "device": device}
        self.info_extra = {"openvino": self._metrics}
        self._openvino_genai = openvino_genai
        tokenizer = self._pipe.get_tokenizer()
        self._tokenizer = tokenizer
        self.artifact = str(folder)
        self.device = device
        self.context_length = context_length
        self.chat_template = _chat_template(folder, tokenizer)
        self.bos_token = _safe(tokenizer.get_bos_token)
        self.eos_token = _safe(tokenizer.get_eos_token)
        config = self._pipe.get_config() if self._steps else self._pipe.get_generation_config()
        eos: set[int] = set(config.stop_token_ids)
        for token in (config.eos_token_id, _safe(tokenizer.get_eos_token_id, -1)):
            if isinstance(token, int) and token >= 0:
                eos.add(token)
        self.eos_token_ids = frozenset(eos)
        self._stop_ids = set(eos)
        # Not under continuous batching: a grammar OpenVINO's compiler refuses there breaks
        # the step of every request in the batch, for good (seen with openvino-genai 2026.4).
        native = hasattr(openvino_genai, "StructuredOutputConfig") and self._steps is None
        self._prefix: PrefixLedger | None = None
        if opts.prefix_reuse and block is not None:
            self._prefix = PrefixLedger(opts.prefix_cache_entries, block)
        self.capabilities = Capabilities(
            constraint="native" if native else None,
            constraint_types=NATIVE_CONSTRAINTS if native else frozenset(),
            batching=self._steps is not None,
            concurrent=self._steps is not None,  # requests run at once; the pipeline batches
            prefix_reuse=self._prefix is not None,
        )
        self._specials = special_token_strings(folder)
        bos_id = _safe(tokenizer.get_bos_token_id, -1)
        probe = self.tokenize("a", add_special=True)
        self.adds_bos = bool(probe) and bos_id >= 0 and probe[0] == bos_id
        if opts.warmup:
            self._warm_up(probe)
        self._metrics["load_time_s"] = perf_counter() - start

    def _warm_up(self, prompt_ids: list[int]) -> None:
        import numpy as np
        import openvino

        config = self._openvino_genai.GenerationConfig()
        config.max_new_tokens = 1
        ids = openvino.Tensor(np.array([prompt_ids], dtype=np.int64))
        if self._steps is not None:
            for _ in self._steps.tokens(ids, config):
                pass
        else:
            self._pipe.generate(ids, config)

    # -- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        if not add_special:  # its tokenizer IR always splits out markers: split them apart
            return encode_plain(self.tokenize_markup, text, self._specials)
        encoded = self._tokenizer.encode(text, add_special_tokens=True)
        return [int(t) for t in encoded.input_ids.data[0]]

    def tokenize_markup(self, text: str) -> list[int]:
        encoded = self._tokenizer.encode(text, add_special_tokens=False)
        return [int(t) for t in encoded.input_ids.data[0]]

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def generation_config(self, params: GenerationParams) -> Any:
        """OpenVINO's GenerationConfig for ``params`` (the core stops; OV only on EOS/length)."""
        config = self._openvino_genai.GenerationConfig()
        config.max_new_tokens = params.max_tokens
        config.stop_token_ids = self._stop_ids
        config.apply_chat_template = False
        config.repetition_penalty = params.repetition_penalty
        if params.greedy:
            config.do_sample = False
        else:
            config.do_sample = True
            config.temperature = params.temperature
            config.top_p = params.top_p
            if params.top_k > 0:
                config.top_k = params.top_k
            config.rng_seed = params.seed if params.seed is not None else random.getrandbits(32)
        return config

    def run(self, request: Request) -> Iterator[Token | Prefill]:
        import numpy as np
        import openvino

        config = self.generation_config(request.params)
        grammar = None
        if request.constraint is not None:
            config.structured_output_config, grammar = self._structured(request.constraint)
        prompt = list(request.prompt_ids or ())
        input_ids = openvino.Tensor(np.array([prompt], dtype=np.int64))
        if self._prefix is None:
            yield from self._tokens(request, input_ids, config, grammar)
            return
        cached = self._prefix.cached(prompt)
        if cached:
            yield Prefill(cached)
        generated: list[int] = []
        tokens = self._tokens(request, input_ids, config, grammar)
        try:
            for token in tokens:
                generated.append(token.id)
                yield token
        finally:
            tokens.close()
            if generated:  # the prompt was evaluated; the last answer token never was
                self._prefix.add(prompt + generated[:-1])

    def _tokens(
        self, request: Request, input_ids: Any, config: Any, grammar: str | None
    ) -> Generator[Token, None, None]:
        """The answer's tokens, from the batch's step loop or this request's own thread."""
        if self._steps is not None:
            yield from self._batched(input_ids, config)
            return
        handoff = _Handoff()
        streamer = _token_streamer(handoff)

        def run() -> None:
            try:
                result = self._pipe.generate(input_ids, config, streamer)
                facts: dict[str, Any] = {"perf_metrics": _summarise(result.perf_metrics)}
                if grammar is not None:
                    facts["grammar"] = grammar
                request.facts["openvino"] = facts
                handoff.put(_DONE)
            except BaseException as exc:
                handoff.put(exc)

        worker = threading.Thread(target=run, name="slmkit-openvino", daemon=True)
        worker.start()
        yielded = False
        try:
            while True:
                item = handoff.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    constrained = request.constraint is not None and not yielded
                    if constrained and isinstance(item, RuntimeError):
                        raise _refused_grammar(item, request.constraint) from item
                    raise item
                yielded = True
                yield Token(item)
        finally:
            handoff.stopped.set()
            worker.join()

    def _batched(self, input_ids: Any, config: Any) -> Iterator[Token]:
        """One request among the batch the step loop advances."""
        assert self._steps is not None
        tokens = self._steps.tokens(input_ids, config)
        try:
            for token in tokens:
                yield Token(token)
        finally:
            tokens.close()

    def _structured(self, constraint: ResponseFormat) -> tuple[Any, str]:
        """OpenVINO's StructuredOutputConfig for a response format the core compiled, and
        which of its forms carries it: "regex", "ebnf" (compact JSON) or "json_schema"
        (OpenVINO's own JSON mode, free whitespace: for schemas the EBNF does not cover)."""
        config = self._openvino_genai.StructuredOutputConfig()
        if constraint.kind == "regex":
            config.regex = constraint.pattern
            return config, "regex"
        schema = constraint.schema or {"type": "object"}
        ebnf = json_schema_ebnf(schema)
        if ebnf is not None:
            config.grammar = ebnf
            return config, "ebnf"
        config.json_schema = json.dumps(schema)
        return config, "json_schema"

    def close(self) -> None:
        if self._steps is not None:
            self._steps.close()
        self._pipe = None


def _refused_grammar(exc: RuntimeError, constraint: ResponseFormat) -> UnsupportedSchema:
    """A runtime failure before the first token of a constrained request: OpenVINO's
    grammar compiler refused what llguidance accepted."""
    return UnsupportedSchema(
        f"OpenVINO GenAI could not apply response_format ({constraint.kind}): "
        f"{_first_line(exc)}; simplify the schema, or use backend 'llamacpp'",
        keyword=None,
    )


def _summarise(metrics: Any) -> dict[str, float]:
    """OpenVINO's PerfMetrics as plain numbers (milliseconds, tokens, tokens/s)."""
    return {
        "ttft_ms": float(metrics.get_ttft().mean),
        "tpot_ms": float(metrics.get_tpot().mean),
        "throughput_tokens_per_s": float(metrics.get_throughput().mean),
        "generate_ms": float(metrics.get_generate_duration().mean),
        "inference_ms": float(metrics.get_inference_duration().mean),
        "tokenization_ms": float(metrics.get_tokenization_duration().mean),
        "detokenization_ms": float(metrics.get_detokenization_duration().mean),
        "input_tokens": float(metrics.get_num_input_tokens()),
        "generated_tokens": float(metrics.get_num_generated_tokens()),
    }


def _safe(getter: Any, default: Any = "") -> Any:
    try:
        return getter()
    except Exception:  # a tokenizer without that special token raises
        return default


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
