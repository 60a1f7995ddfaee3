"""``--to onnx`` for an embedding model: model.onnx plus its tokenizer and pooling config.

fp32 is ``torch.onnx.export`` of the checkpoint's ``AutoModel`` (inputs input_ids,
attention_mask[, token_type_ids]; output last_hidden_state), checked against torch
before it is kept. int8 is the catalog's packaged int8 export when it has one (used
only if its vocabulary and width match the checkpoint's tokenizer and config), else
ONNX Runtime's dynamic int8 quantization of the fp32 export. The folder runs on
``backend="onnx"`` (onnxruntime) and ``backend="openvino"`` (the OpenVINO runtime).
"""

# transformers' and torch's public functions are partly unannotated.
# mypy: disallow-untyped-calls=False
from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConversionError, InvalidRequest
from . import Source
from .options import refuse_unknown
from .progress import step

NAME = "onnx"
PACKAGES = (
    ("transformers", "transformers"),
    ("torch", "torch"),
    ("onnx", "onnx"),
    ("onnxruntime", "onnxruntime"),
)
EXTRA = "onnx-convert"
PRECISIONS = ("fp32", "int8")
#: Files that travel with the export: tokenizer, config, sentence-transformers pipeline.
_KEEP = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)
_ONNX = "model.onnx"
_SAMPLE = ["a short sentence", "a somewhat longer sentence, so this batch needs padding"]


def _precision(options: dict[str, Any]) -> str:
    refuse_unknown(
        options,
        {"precision", "execution_provider"},
        "convert --to onnx of an embedding model takes only --precision (fp32, int8)",
    )
    precision = str(options.get("precision") or "fp32").lower()
    if precision not in PRECISIONS:
        raise InvalidRequest(
            f"convert --to onnx: an embedding model exports as fp32 or int8, not {precision!r}",
            field="precision",
        )
    return precision


def variant(**options: Any) -> str:
    """``fp32`` or ``int8`` (cache dir ``<alias>/onnx-fp32``); one export serves every device."""
    return _precision(options)


def build(source: Source, out: Path, **options: Any) -> None:
    precision = _precision(options)
    assert source.folder is not None
    copy_configs(source.folder, out)
    packaged = source.spec.packaged_data.get("onnx-int8") if source.spec is not None else None
    if precision == "int8" and packaged is not None:
        from ..catalog.offline import packaged_path

        step(f"checking the packaged int8 export ({packaged.dist}) against the tokenizer")
        int8 = packaged_path(packaged)
        _check_pairing(int8, out)
        shutil.copyfile(int8, out / _ONNX)
        return
    step("exporting the encoder with torch.onnx")
    if precision == "fp32":
        _export(source.folder, out / _ONNX)
        return
    with tempfile.TemporaryDirectory(prefix="slmkit-onnx-") as scratch:
        fp32 = Path(scratch) / _ONNX
        _export(source.folder, fp32)
        step("quantizing to int8 (onnxruntime dynamic quantization)")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(out / _ONNX), weight_type=QuantType.QInt8)


def copy_configs(folder: Path, out: Path) -> None:
    """The tokenizer, config and pooling files, next to the exported model."""
    for name in _KEEP:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, out / name)
    modules = folder / "modules.json"
    for module in json.loads(modules.read_text()) if modules.is_file() else ():
        path = str(module.get("path", ""))
        if path and (folder / path).is_dir():
            shutil.copytree(folder / path, out / path)
    if not (out / "tokenizer.json").is_file():
        import transformers

        fast = transformers.AutoTokenizer.from_pretrained(str(folder))
        fast.backend_tokenizer.save(str(out / "tokenizer.json"))


def _export(folder: Path, target: Path) -> None:
    import numpy as np
    import onnxruntime
    import torch
    import transformers

    model = transformers.AutoModel.from_pretrained(str(folder), attn_implementation="eager")
    model.eval()
    takes_types = int(getattr(model.config, "type_vocab_size", 0) or 0) > 0
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    batch = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    inputs = tuple(batch[name] for name in names)
    with torch.inference_mode():  # before export: the reference the export is checked against
        expected = model(**dict(zip(names, inputs, strict=True))).last_hidden_state.numpy()

    class Encoder(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(log):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Encoder(),
                inputs,
                str(target),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:
        raise ConversionError(
            f"torch.onnx.export failed on {folder.name}: {type(exc).__name__}: {exc}"
        ) from exc
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    mask = batch["attention_mask"].numpy().astype(bool)
    error = float(np.abs(got - expected)[mask].max())
    if error > 1e-3:
        raise ConversionError(
            f"the ONNX export of {folder.name} differs from torch by {error:.2g}; not kept"
        )


def _check_pairing(int8: Path, out: Path) -> None:
    """The packaged export must embed the same vocabulary, at the same width, as the config."""
    import onnx
    import tokenizers

    graph = onnx.load(str(int8), load_external_data=False).graph
    config = json.loads((out / "config.json").read_text())
    vocab = tokenizers.Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size()
    shapes = {tuple(t.dims) for t in graph.initializer if "word_embeddings" in t.name}
    wanted = (vocab, int(config["hidden_size"]))
    inputs = {i.name for i in graph.input}
    if wanted not in shapes or not {"input_ids", "attention_mask"} <= inputs:
        raise ConversionError(
            f"{int8} does not match the checkpoint (word embeddings {sorted(shapes)}, "
            f"tokenizer and config {wanted}); reinstall both model packages"
        )
