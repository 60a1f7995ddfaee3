"""``--to hf``: a GGUF (or a checkpoint folder) into a standard transformers checkpoint.

transformers can read a GGUF but refuses ``save_pretrained`` on the result ("quantized
with gguf and is not serializable"). So the model is built from the GGUF's config and
given the dequantized GGUF state dict (identical logits), then saved as safetensors
with its config, generation config, tokenizer and chat template. The checkpoint is a
plain one: the ONNX, OpenVINO and MLX targets start from it.
"""

# transformers' public functions are partly unannotated.
# mypy: disallow-untyped-calls=False
from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConversionError, InvalidRequest
from . import Source
from .options import refuse_unknown
from .progress import step

if TYPE_CHECKING:
    import torch

NAME = "hf"
PACKAGES = (("transformers", "transformers"), ("torch", "torch"), ("gguf", "gguf"))
EXTRA = "transformers"

#: precision option -> torch dtype name. fp32 is exact to the dequantized GGUF.
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_DEFAULT_PRECISION = "fp32"
_END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")


def _precision(options: dict[str, Any]) -> str:
    refuse_unknown(
        options,
        {"precision"},
        f"convert --to hf takes only --precision ({', '.join(PRECISIONS)})",
    )
    value = str(options.get("precision") or _DEFAULT_PRECISION).lower()
    aliases = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
    value = aliases.get(value, value)
    if value not in PRECISIONS:
        raise InvalidRequest(
            f"convert --to hf: precision {value!r} is not one of {', '.join(PRECISIONS)}",
            field="precision",
        )
    return value


def variant(**options: Any) -> str:
    """ "" for the default fp32 checkpoint (cache dir ``<alias>/hf``), else the precision."""
    precision = _precision(options)
    return "" if precision == _DEFAULT_PRECISION else precision


def build(source: Source, out: Path, **options: Any) -> None:
    import torch

    dtype = getattr(torch, PRECISIONS[_precision(options)])
    with _quiet():
        if source.gguf is not None:
            _from_gguf(source, out, dtype)
        elif source.folder is not None:
            _from_folder(source.folder, out, dtype)
        else:  # pragma: no cover - resolve_source always sets one
            raise ConversionError(f"nothing to convert in {source.name}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No tqdm bars or warnings from transformers: the caller shows progress by step."""
    from transformers.utils import logging

    gguf_utils: Any = importlib.import_module("transformers.modeling_gguf_pytorch_utils")

    logging.disable_progress_bar()
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None:  # the GGUF reader uses tqdm directly, past transformers' switch
        gguf_utils.tqdm = _no_bar
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bar is not None:
            gguf_utils.tqdm = bar


def _no_bar(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


def _from_gguf(source: Source, out: Path, dtype: torch.dtype) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    assert source.gguf is not None
    folder, name = str(source.gguf.parent), source.gguf.name
    step("reading the GGUF config")
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.dtype = dtype
    with _empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    step("dequantizing the GGUF tensors")
    tensors = load_gguf_checkpoint(
        str(source.gguf), return_tensors=True, model_to_load=model, torch_dtype=dtype
    )["tensors"]
    step("building the model")
    result = model.load_state_dict(tensors, strict=False, assign=True)
    del tensors
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    missing = [k for k in result.missing_keys if not _tied(model, k)]
    if missing or result.unexpected_keys:
        raise ConversionError(
            f"{source.name}: the GGUF tensors do not fit {type(model).__name__} "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}); "
            "upgrade transformers and gguf, or report the model"
        )
    step("converting the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.model_max_length = getattr(config, "max_position_embeddings", None) or 32768
    if not tokenizer.chat_template and source.spec is not None and source.spec.chat_template:
        tokenizer.chat_template = source.spec.chat_template
    tokenizer.save_pretrained(out)
    step("writing safetensors")
    model.generation_config = _generation_config(config, source, tokenizer)
    model.save_pretrained(out)
    del model
    _check_written(out)


def _tied(model: Any, key: str) -> bool:
    """A missing key is fine when it is a tied copy of another weight (lm_head)."""
    tied = getattr(model, "_tied_weights_keys", None) or {}
    names = tied.keys() if isinstance(tied, dict) else tied
    return key in names and bool(getattr(model.config, "tie_word_embeddings", False))


def _empty_weights() -> contextlib.AbstractContextManager[Any]:
    """Parameters on the meta device (no random init, no memory); buffers stay real."""
    try:
        from accelerate import init_empty_weights
    except ImportError:
        return contextlib.nullcontext()
    return init_empty_weights(include_buffers=False)  # type: ignore[no-any-return]


def _generation_config(config: Any, source: Source, tokenizer: Any) -> Any:
    """Which ids start and end a sequence, nothing about sampling (slmkit passes those)."""
    from transformers import GenerationConfig

    from ..gguf import read_gguf

    assert source.gguf is not None
    meta = read_gguf(source.gguf).metadata
    eos: list[int] = []
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
        value = meta.get(key)
        if isinstance(value, int) and value not in eos:
            eos.append(value)
    vocab = tokenizer.get_vocab()
    # What llama.cpp also treats as end of generation: the end-of-turn markers.
    eos += [vocab[t] for t in _END_OF_TURN if t in vocab and vocab[t] not in eos]
    configured = config.eos_token_id
    for value in configured if isinstance(configured, list) else [configured]:
        if isinstance(value, int) and value not in eos:
            eos.append(value)
    bos = meta.get("tokenizer.ggml.bos_token_id", config.bos_token_id)
    pad = meta.get("tokenizer.ggml.padding_token_id", getattr(config, "pad_token_id", None))
    return GenerationConfig(
        bos_token_id=bos,
        eos_token_id=eos[0] if len(eos) == 1 else eos,
        pad_token_id=pad,
    )


def _from_folder(folder: Path, out: Path, dtype: torch.dtype) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    step("loading the checkpoint")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    step("writing safetensors")
    model.save_pretrained(out)
    del model
    step("writing the tokenizer")
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    _check_written(out)


def _check_written(out: Path) -> None:
    for required in ("config.json", "tokenizer_config.json"):
        if not (out / required).is_file():
            raise ConversionError(f"the checkpoint in {out} lacks {required}")
    if not any(out.glob("*.safetensors")):
        raise ConversionError(f"the checkpoint in {out} has no safetensors weights")
    json.loads((out / "config.json").read_text())
