"""ONNX Runtime GenAI: GenAI model folders (genai_config.json), on CPU, CUDA or DirectML.

The runtime package is onnxruntime-genai only: no torch, no transformers. Models come
from a folder, a hub repo in the Hugging Face cache (one subfolder per execution
provider and precision, picked for this machine), or a catalog alias (the artifact
``slmkit convert ALIAS --to onnx`` made, or the alias's ONNX repo in the HF cache).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._metadata import int_list_member, int_member
from .._prompt import encode_plain, special_token_strings
from ..artifacts import converted
from ..calibrate import reloading, thread_candidates, tuned
from ..catalog import HubArtifact, hfcache
from ..catalog.onnx_layout import (
    GENAI_CONFIG,
    PREFILL_MODEL,
    PREFILL_OVERLAY,
    pick_variant,
    read_json,
)
from ..embeddings import encoder_export
from ..errors import BackendUnavailable, InvalidModelFile, InvalidRequest, ModelNotFound
from ..structured import CONSTRAINT_TYPES
from ..textstream import Detokenizer
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
    from llguidance import LLTokenizer

    from ..params import GenerationParams
    from ..probe import HardwareReport
    from ..structured import TokenConstraint

__all__ = [
    "OnnxBackend",
    "OnnxEngine",
    "OnnxOptions",
    "available_providers",
    "default_provider",
    "pick_variant",
]

Provider = Literal["cpu", "cuda", "dml"]
#: Best first: what "auto" picks among the providers this machine has.
PROVIDER_PREFERENCE: tuple[Provider, ...] = ("cuda", "dml", "cpu")
_DML_PACKAGE = "onnxruntime-genai-directml"
_PROVIDER_PACKAGES = {"cuda": "onnxruntime-genai-cuda", "dml": _DML_PACKAGE}


class OnnxOptions(BaseModel):
    """Options for backend="onnx"."""

    model_config = ConfigDict(extra="forbid")

    context_length: int | None = Field(
        None, ge=16, description="Context window; default: the catalog's, capped by the model's."
    )
    execution_provider: Literal["auto", "cpu", "cuda", "dml"] = Field(
        "auto", description="auto: the best this machine has (cuda > dml > cpu)."
    )
    precision: Literal["int4", "int8", "fp16", "fp32"] | None = Field(
        None,
        description="Which converted artifact a catalog alias uses; default int4, or fp32 "
        "for an embedding model (which also takes int8).",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="intra-op threads; default: measured on this machine at first load "
        "(ONNX Runtime's own choice or 1..physical cores, whichever decodes fastest).",
    )
    calibrate: bool = Field(
        True, description="Measure the thread default on first load (SLMKIT_CALIBRATE=0: never)."
    )
    prefix_reuse: bool = Field(
        False,
        description="Keep recent generators and append only the part of a prompt they have "
        "not seen (conversations, shared system prompts); each holds a KV cache of the whole "
        "context. Off by default (docs/conversations.md).",
    )
    prefix_cache_entries: int = Field(
        4, ge=0, le=64, description="Generators kept for prefix_reuse (LRU)."
    )
    prefill_model: bool | None = Field(
        None,
        description="Read prompts with the folder's int8 prompt model (`slmkit convert --to "
        "onnx` makes one on CPU; ~2x faster prompts, ~0.6 GB more memory). Default: when the "
        "folder has one and prefix_reuse is off (ONNX Runtime GenAI cannot rewind a "
        "pipeline of two models); False: the int4 model reads prompts too.",
    )


class OnnxBackend(Backend):
    name = "onnx"
    extra = "onnx"
    packages = (("onnxruntime_genai", "onnxruntime-genai"),)
    artifact_format = "onnx"
    description = "ONNX Runtime GenAI (genai_config.json folders); CPU, CUDA, DirectML"
    options_model = OnnxOptions
    embeds = True

    @classmethod
    def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
        build = report.builds.get(cls.name)
        if report.nvidia and build == "cuda":
            return 95, f"NVIDIA {report.nvidia[0].name}: ONNX Runtime GenAI CUDA build"
        if report.directml and build == "directml":
            return 90, "Windows GPU: ONNX Runtime GenAI DirectML build"
        reason = "CPU: ONNX Runtime GenAI int4 decodes fastest on CPU (~150 / ~106 tok/s)"
        if report.nvidia:
            reason += "; the GPU is unused: pip install onnxruntime-genai-cuda"
        return 70, reason

    @classmethod
    def runtime_build(
        cls, folder_of: Callable[[str], Path | None], installed: Callable[[str], bool]
    ) -> str | None:
        if folder_of("onnxruntime_genai") is None:
            return None
        for build, dist in (("cuda", "onnxruntime-genai-cuda"), ("directml", _DML_PACKAGE)):
            if installed(dist):
                return build
        return "cpu"

    def load(self, model: ModelRef, options: OnnxOptions) -> Engine:
        opts = options
        encoder = encoder_export(model, opts.precision or "fp32", self.name)
        if encoder is not None:
            from ..embeddings.onnx import OnnxEncoder

            return OnnxEncoder(encoder, opts.execution_provider, opts.threads)
        provider = choose_provider(opts.execution_provider)
        folder = resolve_folder(model, provider, opts.precision or "int4")
        genai = read_json(folder / GENAI_CONFIG)
        model_context = int_member(genai, "model.context_length", folder / GENAI_CONFIG)
        default_ctx = model.default_context
        context = opts.context_length or (
            min(default_ctx, model_context) if model_context else default_ctx
        )
        if model_context and context > model_context:
            raise InvalidRequest(
                f"context_length={context} is more than this model's {model_context}; "
                f"pass context_length <= {model_context}",
                field="context_length",
            )
        window = _sliding_window(genai, folder / GENAI_CONFIG)
        if context < window:
            raise InvalidRequest(
                f"context_length={context} is below this model's sliding window ({window}), "
                f"which ONNX Runtime GenAI needs as a minimum; pass context_length >= {window}",
                field="context_length",
            )
        candidates = thread_candidates("threads", runtime_default=True) if provider == "cpu" else []
        kept = opts.prefix_cache_entries if opts.prefix_reuse else None
        pipeline = prompt_pipeline(folder, opts.prefill_model, opts.prefix_reuse)
        return tuned(
            type(self),
            model.name,
            folder,
            {"provider": provider, "prefill_model": pipeline is not None},
            {"threads": opts.threads},
            candidates,
            reloading(
                lambda s: OnnxEngine(
                    folder, genai, provider, context, s.get("threads"), kept, pipeline
                )
            ),
            enabled=opts.calibrate,
        )


def prompt_pipeline(folder: Path, wanted: bool | None, prefix_reuse: bool) -> dict[str, Any] | None:
    """The genai_config overlay that reads prompts with the folder's int8 prompt model, or
    None where the int4 model reads them (no prompt model, turned off, or prefix reuse)."""
    overlay = folder / PREFILL_OVERLAY
    if wanted is False or (wanted is None and prefix_reuse):
        return None
    if wanted and prefix_reuse:
        raise InvalidRequest(
            "prefill_model=True and prefix_reuse=True cannot be combined: ONNX Runtime GenAI "
            "cannot rewind a pipeline of two models, which reuse needs; drop one of them",
            field="prefill_model",
        )
    if not (overlay.is_file() and (folder / PREFILL_MODEL).is_file()):
        if wanted:
            raise InvalidRequest(
                f"prefill_model=True, but {folder} has no int8 prompt model ({PREFILL_MODEL}); "
                "make it with `slmkit convert MODEL --to onnx --force` (int4 on cpu), or "
                "leave prefill_model unset",
                field="prefill_model",
            )
        return None
    return read_json(overlay)


# -- execution providers ----------------------------------------------------------------


def available_providers() -> list[Provider]:
    """Execution providers the installed onnxruntime-genai can use here, best first."""
    import onnxruntime_genai as og

    found: list[Provider] = []
    if og.is_cuda_available():
        found.append("cuda")
    if og.is_dml_available():
        found.append("dml")
    found.append("cpu")
    return found


def default_provider() -> Provider:
    """What ``execution_provider="auto"`` means on this machine."""
    return available_providers()[0]


def choose_provider(requested: str) -> Provider:
    """The provider to run on; an explicit one that is not available is an error."""
    available = available_providers()
    if requested == "auto":
        return available[0]
    if requested not in available:
        package = _PROVIDER_PACKAGES.get(requested, "onnxruntime-genai")
        raise BackendUnavailable(
            f"backend 'onnx': execution_provider={requested!r} is not available here "
            f"(available: {', '.join(available)}); install {package} on a machine with that "
            f"device, or pass execution_provider='auto'"
        )
    return requested  # type: ignore[return-value]


# -- finding the model folder -----------------------------------------------------------


def resolve_folder(model: ModelRef, provider: Provider, precision: str) -> Path:
    """The GenAI folder for a path, a catalog alias, or a hub repo id in the HF cache."""
    if model.path is not None:
        path = model.path.parent if model.path.name == GENAI_CONFIG else model.path
        return pick_variant(path, provider, str(model.path))
    spec = model.spec
    if spec is not None:
        hub = spec.hub.get("onnx")
        if hub is not None:
            found = hfcache.find_cached(hub, "onnx", provider)
            if found is not None or spec.packaged is None:
                root = found or hfcache.resolve(hub, f"{spec.alias} (ONNX)", "onnx", provider)
                return pick_variant(root, provider, hub.repo, hub=True)
        if spec.packaged is not None:
            return converted(
                spec.alias,
                "onnx",
                "onnx",
                _convert_flags(provider, precision),
                precision=precision,
                execution_provider=provider,
            )
        raise ModelNotFound(
            f"{spec.alias} has no ONNX model and no offline GGUF to convert: download its "
            f"checkpoint ({spec.hub.get('hf', HubArtifact('?')).repo}) and run "
            "`slmkit convert FOLDER --to onnx`, or use another backend (slmkit models)"
        )
    if "/" in model.name:
        root = hfcache.resolve(HubArtifact(model.name), model.name, "onnx", provider)
        return pick_variant(root, provider, model.name, hub=True)
    raise ModelNotFound(
        f"unknown model {model.name!r}: use a catalog alias (slmkit models), a folder with "
        f"{GENAI_CONFIG}, or a hub repo id in the Hugging Face cache"
    )


def _convert_flags(provider: Provider, precision: str) -> str:
    flags = []
    if precision != "int4":
        flags.append(f"--precision {precision}")
    if provider != default_provider():
        flags.append(f"--execution-provider {provider}")
    return " ".join(flags)


# -- the engine -------------------------------------------------------------------------


class OnnxEngine(TokenEngine):
    def __init__(
        self,
        folder: Path,
        genai: dict[str, Any],
        provider: Provider,
        context: int,
        threads: int | None,
        prefix_entries: int | None = None,
        pipeline: dict[str, Any] | None = None,
    ) -> None:
        """``prefix_entries``: generators kept for prefix reuse; None: reuse off.
        ``pipeline``: the overlay that reads prompts with the int8 prompt model."""
        import onnxruntime_genai as og

        self._og = og
        try:
            config = og.Config(str(folder))
            config.clear_providers()
            if provider != "cpu":
                config.append_provider(provider)
            if pipeline is not None:
                config.overlay(json.dumps(pipeline))
            if threads is not None:
                options = {"intra_op_num_threads": threads}
                config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
            self._model = og.Model(config)
            self._tokenizer = og.Tokenizer(self._model)
        except Exception as exc:
            raise InvalidModelFile(
                f"onnxruntime-genai could not load {folder} on {provider} ({exc}); the folder "
                "may be for a newer onnxruntime-genai (upgrade it) or another execution "
                "provider: rebuild it with `slmkit convert MODEL --to onnx --force`"
            ) from exc
        self.artifact = str(folder)
        self.device = provider
        self.context_length = context
        reads = f"{PREFILL_MODEL} (int8)" if pipeline is not None else "the decoding model"
        self.info_extra = {"onnx": {"prompts_read_by": reads}}
        #: Gemma 3: ORT GenAI refuses a max_length below its sliding window.
        self._min_length = min(_sliding_window(genai, folder / GENAI_CONFIG), context)
        self._vocab_size = int_member(genai, "model.vocab_size", folder / GENAI_CONFIG)
        tokenizer_config = _tokenizer_config(folder)
        self.chat_template = _chat_template(folder, tokenizer_config)
        self.bos_token = _token_text(tokenizer_config.get("bos_token"))
        self.eos_token = _token_text(tokenizer_config.get("eos_token"))
        self._bos_id = self._token_id(self.bos_token)
        self.adds_bos = _adds_bos(folder, tokenizer_config) and self._bos_id is not None
        eos_ids = _eos_ids(genai, self._tokenizer, folder / GENAI_CONFIG)
        self.eos_token_ids = frozenset(eos_ids)
        self._eos_list = sorted(eos_ids)
        self._specials = special_token_strings(folder)
        self._folder = folder
        self.grammar = GrammarTokenizer(self._llguidance_tokenizer)
        self._prefix: PrefixPool[Any] | None = None
        self._prefix_options: dict[str, Any] = {}
        if prefix_entries is not None:
            self._prefix = PrefixPool(prefix_entries)
        masks = (folder / "tokenizer.json").is_file()
        self.capabilities = Capabilities(
            prefix_reuse=self._prefix is not None,
            constraint="mask" if masks else None,
            constraint_types=CONSTRAINT_TYPES if masks else frozenset(),
        )

    def _token_id(self, text: str) -> int | None:
        if not text:
            return None
        ids = self._tokenizer.encode(text)
        return int(ids[0]) if len(ids) == 1 else None

    def tokenize(self, text: str, *, add_special: bool) -> list[int]:
        if not add_special:  # its encode() always parses markers: split them apart
            return encode_plain(self.tokenize_markup, text, self._specials)
        ids = self.tokenize_markup(text)
        if add_special and self.adds_bos and (not ids or ids[0] != self._bos_id):
            ids.insert(0, self._bos_id)  # type: ignore[arg-type]
        return ids

    def tokenize_markup(self, text: str) -> list[int]:
        return [int(i) for i in self._tokenizer.encode(text)]

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids)))

    def detokenizer(self) -> Detokenizer:
        return _StreamDetokenizer(self._tokenizer.create_stream())

    def run(self, request: Request) -> Iterator[Token | Prefill | Finish]:
        prompt = list(request.prompt_ids or ())
        generator, cached, keep = self._generator(prompt, request.params)
        if cached:
            yield Prefill(cached)
        constraint = self.grammar.constraint(request.constraint)
        tokens = self._tokens(generator, prompt[cached:], constraint, keep)
        yield from masked_events(tokens, constraint, request.facts)

    def _generator(self, prompt: list[int], params: GenerationParams) -> tuple[Any, int, bool]:
        """The generator for a request, how many prompt tokens it already holds, and
        whether it goes back to the prefix pool afterwards.

        Kept generators are sized to the whole context and built for one set of search
        options: a request with other options drops them and starts over. Seeded sampling
        gets a fresh generator (a continued one would not repeat the seed's draws).
        """
        og = self._og
        options = self.search_options(len(prompt), params)
        pool = self._prefix
        keep = pool is not None and (params.greedy or params.seed is None)
        generator, cached = None, 0
        if pool is not None and keep:
            options["max_length"] = self.context_length
            same = {k: v for k, v in options.items() if k not in ("max_length", "random_seed")}
            if same != self._prefix_options:
                self._prefix = pool = PrefixPool(pool.entries)
                self._prefix_options = same
            generator, cached = pool.take(prompt)
            if generator is not None and generator.token_count() > cached:
                try:
                    generator.rewind_to(cached)
                except RuntimeError:  # a cache that cannot rewind (sliding window): start over
                    generator, cached = None, 0
        if generator is None:
            generator_params = og.GeneratorParams(self._model)
            generator_params.set_search_options(**options)
            generator = og.Generator(self._model, generator_params)
        return generator, cached, keep

    def _tokens(
        self, generator: Any, suffix: list[int], constraint: TokenConstraint | None, keep: bool
    ) -> Generator[int, None, None]:
        held = 0  # tokens whose KV the generator holds
        try:
            generator.append_tokens(suffix)
            held = generator.token_count()
            while not generator.is_done():
                if constraint is not None:  # the step's logits, masked before sampling
                    logits = generator.get_logits()
                    generator.set_logits(constraint.apply(logits.reshape(-1)).reshape(logits.shape))
                before = generator.token_count()
                generator.generate_next_token()
                # a sampled token joins the sequence unevaluated; EOS does not join it
                count = generator.token_count()
                held = count - 1 if count > before else count
                yield int(generator.get_next_tokens()[0])
        finally:
            if keep and held and self._prefix is not None:
                self._prefix.put([int(t) for t in generator.get_sequence(0)[:held]], generator)
            del generator

    def _llguidance_tokenizer(self) -> LLTokenizer:
        """From the folder's tokenizer.json (ORT GenAI's own tokenizer hides its vocabulary;
        its built-in guidance allows free whitespace in JSON, the core's grammar does not)."""
        from llguidance import LLTokenizer

        text = (self._folder / "tokenizer.json").read_text(encoding="utf-8")
        return LLTokenizer(text, n_vocab=self._vocab_size, eos_token=self._eos_list)

    def search_options(self, prompt_tokens: int, params: GenerationParams) -> dict[str, Any]:
        """ORT GenAI search options for one request.

        ``max_length`` counts the prompt in ORT GenAI (slmkit's max_tokens does not); the
        core stops at max_tokens itself, so this only sizes the KV cache. Every option is
        set, so defaults baked into genai_config.json (e.g. a repetition penalty from
        generation_config.json) never leak into a request.
        """
        length = max(prompt_tokens + params.max_tokens, self._min_length)
        return {
            "max_length": min(length, self.context_length),
            "min_length": 0,
            "do_sample": not params.greedy,
            "temperature": params.temperature if not params.greedy else 1.0,
            # top_k beyond the vocabulary means "no limit", which ORT GenAI would refuse
            "top_k": min(params.top_k, self._vocab_size) if self._vocab_size else params.top_k,
            "top_p": params.top_p,
            "repetition_penalty": params.repetition_penalty,
            "random_seed": params.seed if params.seed is not None else -1,
            "num_beams": 1,
            "num_return_sequences": 1,
            "no_repeat_ngram_size": 0,
        }

    def close(self) -> None:
        self._prefix = None
        del self._tokenizer
        del self._model


class _StreamDetokenizer:
    """og's TokenizerStream: holds back incomplete characters, skips special tokens."""

    def __init__(self, stream: Any) -> None:
        self._decode = stream.decode

    def add(self, token_id: int) -> str:
        return str(self._decode(token_id))

    def flush(self) -> str:
        return ""


def _sliding_window(genai: dict[str, Any], path: Path) -> int:
    return int_member(genai, "model.decoder.sliding_window.window_size", path)


def _tokenizer_config(folder: Path) -> dict[str, Any]:
    path = folder / "tokenizer_config.json"
    return read_json(path) if path.is_file() else {}


def _chat_template(folder: Path, tokenizer_config: dict[str, Any]) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template else None


def _adds_bos(folder: Path, tokenizer_config: dict[str, Any]) -> bool:
    """Does the model want BOS first? ORT GenAI's tokenizer never adds it by itself.

    tokenizer_config.json's add_bos_token when present (transformers 4), else whether
    tokenizer.json's post-processor starts a single sequence with a special token
    (transformers 5 writes only that).
    """
    flag = tokenizer_config.get("add_bos_token")
    if isinstance(flag, bool):
        return flag
    processor = _json_member(folder / "tokenizer.json", "post_processor") or {}
    processors = processor.get("processors", [processor])
    for step in processors:
        single = step.get("single") if isinstance(step, dict) else None
        if single:
            return "SpecialToken" in single[0]
    return False


def _json_member(path: Path, key: str) -> Any:
    """One top-level member of a large JSON file (tokenizer.json: tens of MB) without
    parsing the rest; None when absent or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    at = text.find(f'"{key}"')
    colon = text.find(":", at) if at >= 0 else -1
    if colon < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[colon + 1 :].lstrip())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _token_text(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _eos_ids(genai: dict[str, Any], tokenizer: Any, path: Path) -> set[int]:
    """genai_config's eos_token_id (what stops the generator) and the tokenizer's."""
    ids = set(int_list_member(genai, "model.eos_token_id", path))
    with contextlib.suppress(AttributeError, TypeError):
        ids.update(int(v) for v in tokenizer.eos_token_ids)
    return ids
