"""An embedding model on ONNX Runtime: the export ``slmkit convert --to onnx`` writes.

Runs with plain ``onnxruntime`` (which onnxruntime-genai depends on) and the
``tokenizers`` package: no torch, no transformers at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable, InvalidModelFile
from .engine import EmbeddingEngine
from .pooling import position_limit, read_config
from .source import ONNX_FILE
from .tokens import EncoderTokenizer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxEncoder"]

_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
}

_SHORT = {name: short for short, name in _PROVIDERS.items()}


class OnnxEncoder(EmbeddingEngine):
    """An ``onnxruntime.InferenceSession`` over model.onnx, pooled as the folder says."""

    def __init__(self, folder: Path, provider: str, threads: int | None) -> None:
        import onnxruntime as ort

        providers = _providers(provider, ort.get_available_providers())
        session_options = ort.SessionOptions()
        if threads:
            session_options.intra_op_num_threads = threads
        path = folder / ONNX_FILE
        try:
            self._session = ort.InferenceSession(str(path), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise InvalidModelFile(f"ONNX Runtime cannot load {path}: {exc}") from exc
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._output = _hidden_output([o.name for o in self._session.get_outputs()], path)
        self.config = read_config(folder, position_limit(folder))
        self.tokenizer = EncoderTokenizer.from_folder(
            folder, self.config.max_tokens, self.config.lowercase
        )
        self.artifact = str(path)
        self.device = _SHORT.get(providers[0], providers[0])
        self.context_length = self.config.max_tokens

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        result = self._session.run([self._output], {name: feeds[name] for name in self._inputs})
        return result[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        del self._session


def _providers(wanted: str, available: list[str]) -> list[str]:
    if wanted == "auto":
        return [p for p in ("CUDAExecutionProvider", "DmlExecutionProvider") if p in available] + [
            "CPUExecutionProvider"
        ]
    name = _PROVIDERS[wanted]
    if name not in available:
        raise BackendUnavailable(
            f"backend 'onnx': execution_provider={wanted!r} is not in this onnxruntime "
            f"(it has {', '.join(available)}); pass execution_provider='auto'"
        )
    return [name, "CPUExecutionProvider"] if name != "CPUExecutionProvider" else [name]


def _hidden_output(outputs: list[str], path: Path) -> str:
    for name in ("last_hidden_state", "token_embeddings"):
        if name in outputs:
            return name
    raise InvalidModelFile(
        f"{path} has no last_hidden_state output (it has {', '.join(outputs)}); export it with "
        "`slmkit convert MODEL --to onnx`"
    )
