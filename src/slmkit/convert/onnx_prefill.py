"""The int8 prompt model of an int4 CPU ONNX folder (``convert --to onnx --prefill int8``).

ONNX Runtime's int4 ``MatMulNBits`` kernels decode fastest on a CPU but read prompts
slowly; its dynamic-int8 MatMul runs prompt-shaped products about 3x faster
(docs/benchmarks.md) and decodes slower (twice the weight bytes per token). So an int4
folder gets a second model for prompts: the builder's fp32 export of the same checkpoint
with int8 weights (``_Int8Weights``). Both graphs take and give the same tensors, so ONNX
Runtime GenAI runs them as one decoder pipeline over one KV cache: the prompt model on
prompts (any step of more than one token), the int4 model on generated tokens.
``prefill.json`` holds that pipeline as a genai_config overlay; ``genai_config.json`` stays
the plain int4 model's, so the folder still runs anywhere as before.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..catalog.onnx_layout import GENAI_CONFIG, PREFILL_MODEL, PREFILL_OVERLAY, read_json
from ..errors import ConversionError
from .progress import step

__all__ = ["build_prompt_model", "pipeline_overlay"]

#: export(checkpoint, out, scratch): the builder's fp32 CPU export, as convert.onnx runs it.
Export = Callable[[Path, Path, str], None]


def build_prompt_model(checkpoint: Path, out: Path, export: Export) -> None:
    """Write ``prefill.onnx`` and ``prefill.json`` into the int4 folder ``out``; nothing
    for a model with a sliding window (ONNX Runtime GenAI's pipeline cuts prompts into
    window-sized chunks for it, which the builder's graphs do not expect)."""
    genai = read_json(out / GENAI_CONFIG)
    decoder = genai.get("model", {}).get("decoder", {})
    if decoder.get("sliding_window"):
        step("no int8 prompt model: the model has a sliding window")
        return
    step("building the int8 prompt model (the fp32 export, its weights in int8)")
    with tempfile.TemporaryDirectory(prefix="slmkit-onnx-prefill-") as scratch:
        fp32 = Path(scratch) / "fp32"
        export(checkpoint, fp32, str(Path(scratch) / "builder"))
        _quantize(fp32 / "model.onnx", out / PREFILL_MODEL)
    tokens_model = str(decoder.get("filename") or "model.onnx")
    names = _io_names(out / tokens_model)
    if _io_names(out / PREFILL_MODEL) != names:
        (out / PREFILL_MODEL).unlink()
        raise ConversionError(
            "the int8 prompt model's inputs and outputs differ from the int4 model's; "
            "convert with --prefill none"
        )
    overlay = pipeline_overlay(tokens_model, *names)
    (out / PREFILL_OVERLAY).write_text(json.dumps(overlay, indent=2), encoding="utf-8")


def pipeline_overlay(tokens_model: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    """The genai_config overlay: prompts through the int8 model, tokens through the int4."""

    def stage(filename: str, prompt: bool) -> dict[str, Any]:
        return {
            "filename": filename,
            "inputs": inputs,
            "outputs": outputs,
            "run_on_prompt": prompt,
            "run_on_token_gen": not prompt,
        }

    pipeline = {"prompt": stage(PREFILL_MODEL, True), "tokens": stage(tokens_model, False)}
    return {"model": {"type": "decoder-pipeline", "decoder": {"pipeline": [pipeline]}}}


def _quantize(fp32: Path, target: Path) -> None:
    """The fp32 graph with int8 weights, written as one file (~0.65 GB, under protobuf's
    2 GB limit)."""
    import onnx

    model = onnx.load(str(fp32))
    rewrite = _Int8Weights({t.name: t for t in model.graph.initializer})
    nodes = [new for node in model.graph.node for new in rewrite(node)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + rewrite.made)
    model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    try:
        onnx.save(model, str(target))
    except (ValueError, OSError) as exc:
        raise ConversionError(
            f"could not write the int8 prompt model ({exc}); convert with --prefill none"
        ) from exc


class _Int8Weights:
    """Rewrites nodes over constant float weights to int8 ones.

    A MatMul by a constant becomes ONNX Runtime's ``DynamicQuantizeMatMul`` (activations
    quantized per call), and a Gather from a constant table (the embedding) gathers int8
    rows and scales them back. Weights are symmetric, one scale per output column (per
    row for a table), within +-63: full-range int8 saturates ONNX Runtime's u8 x s8
    kernels on CPUs without VNNI (on AVX2 the model answered gibberish), which is why its
    own quantizer keeps weights to 7 bits too.
    """

    def __init__(self, weights: dict[str, Any]) -> None:
        self._weights = weights
        self._done: dict[tuple[str, int], tuple[str, str]] = {}  # a weight shared by nodes
        self.made: list[Any] = []

    def __call__(self, node: Any) -> list[Any]:
        if node.op_type == "MatMul" and self._matrix(node.input[1]) is not None:
            return [self._matmul(node)]
        first_axis = not any(a.name == "axis" and a.i != 0 for a in node.attribute)
        if node.op_type == "Gather" and first_axis and self._matrix(node.input[0]) is not None:
            return self._gather(node)
        return [node]

    def _matrix(self, name: str) -> Any:
        from onnx import TensorProto

        tensor = self._weights.get(name)
        if tensor is None or len(tensor.dims) != 2 or tensor.data_type != TensorProto.FLOAT:
            return None
        return tensor

    def _int8(self, name: str, axis: int) -> tuple[str, str]:
        """The names of the int8 weight and its scales, one per slice along ``axis``
        (per column of a MatMul weight, shape [N]; per row of a table, shape [V, 1]);
        made once per weight and axis."""
        import numpy as np

        if (name, axis) in self._done:
            return self._done[name, axis]
        from onnx import numpy_helper

        weight = numpy_helper.to_array(self._weights[name]).astype(np.float32)
        peak = np.abs(weight).max(axis=axis, keepdims=True)
        scale = np.maximum(peak / 63.0, np.finfo(np.float32).tiny).astype(np.float32)
        quantized = np.clip(np.round(weight / scale), -63, 63).astype(np.int8)
        scale = scale.reshape(-1) if axis == 0 else scale
        names = (
            self._add(quantized, f"{name}_int8_{axis}"),
            self._add(scale, f"{name}_scale_{axis}"),
        )
        if axis == 0:  # DynamicQuantizeMatMul's zero points: symmetric weights
            self._add(np.zeros(scale.size, np.int8), f"{name}_zero")
        self._done[name, axis] = names
        return names

    def _add(self, value: Any, name: str) -> str:
        from onnx import numpy_helper

        self.made.append(numpy_helper.from_array(value, name))
        return name

    def _matmul(self, node: Any) -> Any:
        from onnx import helper

        weight, scale = self._int8(node.input[1], axis=0)
        inputs = [node.input[0], weight, scale, f"{node.input[1]}_zero"]
        return helper.make_node(
            "DynamicQuantizeMatMul", inputs, list(node.output), node.name, domain="com.microsoft"
        )

    def _gather(self, node: Any) -> list[Any]:
        from onnx import TensorProto, helper

        table, ids, out = node.input[0], node.input[1], node.output[0]
        rows, scales = self._int8(table, axis=1)
        return [
            helper.make_node("Gather", [rows, ids], [f"{out}_int8"]),
            helper.make_node("Cast", [f"{out}_int8"], [f"{out}_float"], to=TensorProto.FLOAT),
            helper.make_node("Gather", [scales, ids], [f"{out}_scale"]),
            helper.make_node("Mul", [f"{out}_float", f"{out}_scale"], [out], node.name),
        ]


def _io_names(model: Path) -> tuple[list[str], list[str]]:
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    return [i.name for i in graph.input], [o.name for o in graph.output]
