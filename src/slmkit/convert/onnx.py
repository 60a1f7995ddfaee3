"""``--to onnx``: a transformers checkpoint into an ONNX Runtime GenAI folder.

Uses onnxruntime-genai's own model builder (``onnxruntime_genai.models.builder``) on
the checkpoint ``--to hf`` makes (or on a checkpoint folder given as the source). The
builder needs transformers, torch, onnx and onnx_ir at conversion time only: extra
``onnx-convert``. Running the result needs onnxruntime-genai alone (extra ``onnx``).

On CPU an int4 folder also gets an int8 *prompt model* (``--prefill int8``, the default
there; ``onnx_prefill.py``), which the backend runs with the int4 model as one ONNX Runtime
GenAI pipeline: prompts read about 2x faster, tokens still on int4.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConversionError, InvalidRequest
from . import Source
from .options import refuse_unknown
from .progress import step

NAME = "onnx"
PACKAGES = (
    ("onnxruntime_genai", "onnxruntime-genai"),
    ("transformers", "transformers"),
    ("torch", "torch"),
    ("onnx", "onnx"),
    ("onnx_ir", "onnx-ir"),
)
EXTRA = "onnx-convert"

PRECISIONS = ("int4", "fp16", "fp32")
#: int4 MatMul activation precision per provider when none is asked for.
DEFAULT_ACCURACY = {"cpu": 4}
PROVIDERS = ("cpu", "cuda", "dml")
PREFILLS = ("int8", "none")
#: Bump when build() writes something else: a cached artifact of another version is rebuilt.
VERSION = 2
#: The builder's valid (precision, provider) pairs: no fp16 on CPU, no fp32 on DirectML.
_VALID = {
    ("int4", "cpu"),
    ("int4", "cuda"),
    ("int4", "dml"),
    ("fp16", "cuda"),
    ("fp16", "dml"),
    ("fp32", "cpu"),
    ("fp32", "cuda"),
}


def _options(options: dict[str, Any]) -> tuple[str, str, int, str]:
    refuse_unknown(
        options,
        {"precision", "execution_provider", "accuracy_level", "prefill"},
        "convert --to onnx takes only --precision (int4, fp16, fp32), "
        "--execution-provider (cpu, cuda, dml), --accuracy-level (1-4) and --prefill "
        "(int8, none)",
    )
    precision = str(options.get("precision") or "int4").lower()
    if precision not in PRECISIONS:
        raise InvalidRequest(
            f"convert --to onnx: precision {precision!r} is not one of {', '.join(PRECISIONS)}",
            field="precision",
        )
    provider = options.get("execution_provider") or _default_provider()
    provider = {"directml": "dml"}.get(str(provider).lower(), str(provider).lower())
    if provider not in PROVIDERS:
        raise InvalidRequest(
            f"convert --to onnx: execution provider {provider!r} is not one of "
            f"{', '.join(PROVIDERS)}",
            field="execution_provider",
        )
    if (precision, provider) not in _VALID:
        raise InvalidRequest(
            f"convert --to onnx: {precision} on {provider} is not supported by the ONNX Runtime "
            f"GenAI builder; on {provider} use "
            + " or ".join(p for p in PRECISIONS if (p, provider) in _VALID),
            field="precision",
        )
    level = _accuracy_level(options.get("accuracy_level"), provider)
    prefill = _prefill(options.get("prefill"), precision, provider)
    return precision, provider, level if precision == "int4" else 0, prefill


def _prefill(value: Any, precision: str, provider: str) -> str:
    """The prompt model: int8 by default for int4 on CPU (the only place its kernels run
    and int4 prompts are slow), none elsewhere."""
    fits = (precision, provider) == ("int4", "cpu")
    if value is None:
        return "int8" if fits else "none"
    prefill = str(value).lower()
    if prefill not in PREFILLS:
        raise InvalidRequest(
            f"convert --to onnx: --prefill {value!r} is not one of {', '.join(PREFILLS)}",
            field="prefill",
        )
    if prefill == "int8" and not fits:
        raise InvalidRequest(
            f"convert --to onnx: --prefill int8 is for int4 on cpu, not {precision} on "
            f"{provider}; pass --prefill none",
            field="prefill",
        )
    return prefill


def _accuracy_level(value: Any, provider: str) -> int:
    """MatMulNBits' activation type for int4 weights: 4 = int8, 3 = bf16, 2 = fp16, 1 = fp32.

    Default: 4 on CPU (int8 activations: faster prefill and decode than 1 here,
    docs/benchmarks.md), the builder's own choice (0) elsewhere."""
    if value is None:
        return DEFAULT_ACCURACY.get(provider, 0)
    try:
        level = int(value)
    except (TypeError, ValueError):
        level = -1
    if level not in (1, 2, 3, 4):
        raise InvalidRequest(
            f"convert --to onnx: accuracy level {value!r} is not one of 1 (fp32), 2 (fp16), "
            "3 (bf16), 4 (int8 activations)",
            field="accuracy_level",
        )
    return level


def _default_provider() -> str:
    """The provider the onnx backend picks by default here; cpu without onnxruntime-genai."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime_genai") is None:
        return "cpu"
    from ..backends.onnx import default_provider

    return default_provider()


def variant(**options: Any) -> str:
    """``<precision>-<provider>[-acc<N>][-prefill8]``, e.g. ``int4-cpu-acc4-prefill8``
    (cache dir ``<alias>/onnx-int4-cpu-acc4-prefill8``): every setting that changes the
    built model."""
    precision, provider, level, prefill = _options(options)
    return (
        f"{precision}-{provider}"
        + (f"-acc{level}" if level else "")
        + ("-prefill8" if prefill == "int8" else "")
    )


def build(source: Source, out: Path, **options: Any) -> None:
    precision, provider, level, prefill = _options(options)
    checkpoint = source.folder
    if checkpoint is None:
        from . import convert

        checkpoint = convert(source.name, to="hf")
    step(f"building the {precision} ONNX model for {provider} (onnxruntime-genai builder)")
    with tempfile.TemporaryDirectory(prefix="slmkit-onnx-") as scratch:
        _run_builder(checkpoint, out, precision, provider, scratch, level)
    _copy_chat_template(checkpoint, out)
    if prefill == "int8":
        from .onnx_prefill import build_prompt_model

        def export_fp32(source: Path, dest: Path, scratch: str) -> None:
            _run_builder(source, dest, "fp32", "cpu", scratch, 0)

        build_prompt_model(checkpoint, out, export_fp32)


def _flatten_rope(config: Any) -> None:
    """Give the builder the RoPE settings in the form it reads.

    Under transformers 5, Gemma 3 keeps RoPE settings per layer type
    (``rope_parameters = {"full_attention": {...}, "sliding_attention": {...}}``); the
    builder expects the older flat form (``rope_parameters["rope_type"]``,
    ``rope_local_base_freq``) and fails with ``KeyError: 'rope_type'``.
    """
    rope = getattr(config, "rope_parameters", None)
    if not (isinstance(rope, dict) and "full_attention" in rope):
        return
    full, local = rope["full_attention"], rope.get("sliding_attention", {})
    config.rope_parameters = dict(full)
    config.rope_theta = full.get("rope_theta")
    if "rope_theta" in local:
        config.rope_local_base_freq = local["rope_theta"]


def _run_builder(
    checkpoint: Path, out: Path, precision: str, provider: str, scratch: str, level: int
) -> None:
    """The builder on ``checkpoint`` into ``out``, its chatter kept for the error message."""
    from onnxruntime_genai.models import builder

    # prune_lm_head: prefill computes logits for the last position only (all slmkit reads);
    # the full [prompt, vocab] product was ~30% of prefill time on a 151k vocabulary.
    asked = ["prune_lm_head=true"] + ([f"accuracy_level={level}"] if level else [])
    log = io.StringIO()
    quantizer_log = logging.getLogger("onnxruntime.quantization")
    level = quantizer_log.level
    quantizer_log.setLevel(logging.WARNING)  # it logs every MatMul it quantizes
    try:
        # its progress bars and prints would drown the CLI's step line; kept for errors
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            extra = builder.parse_extra_options(
                None, str(checkpoint), str(out), precision, provider, scratch, asked
            )
            _flatten_rope(extra["hf_details"]["hf_config"])
            builder.create_model(
                None, str(checkpoint), str(out), precision, provider, scratch, **extra
            )
    except Exception as exc:
        tail = " | ".join(log.getvalue().strip().splitlines()[-3:])
        raise ConversionError(
            f"the ONNX Runtime GenAI model builder failed on {checkpoint.name}: "
            f"{type(exc).__name__}: {exc}" + (f" (builder said: {tail})" if tail else "")
        ) from exc
    finally:
        quantizer_log.setLevel(level)
    if not (out / "genai_config.json").is_file():
        raise ConversionError("the ONNX Runtime GenAI model builder wrote no genai_config.json")


def _copy_chat_template(checkpoint: Path, out: Path) -> None:
    """Keep the model's chat template next to the ONNX model (the backend reads it there)."""
    source = checkpoint / "chat_template.jinja"
    if source.is_file() and not (out / source.name).exists():
        shutil.copyfile(source, out / source.name)
