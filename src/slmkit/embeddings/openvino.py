"""An embedding model on the OpenVINO runtime, reading the ONNX export directly.

``openvino.Core().read_model`` takes the same model.onnx the onnx backend runs, so
no second export is needed. (openvino_genai's TextEmbeddingPipeline wants an IR
folder with a converted OpenVINO tokenizer; the runtime plus ``tokenizers`` does
the same work from files slmkit already has.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelFile
from .engine import EmbeddingEngine
from .pooling import position_limit, read_config
from .source import ONNX_FILE
from .tokens import EncoderTokenizer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OpenVINOEncoder"]


class OpenVINOEncoder(EmbeddingEngine):
    """A model compiled for one OpenVINO device, pooled as the folder says."""

    def __init__(self, folder: Path, device: str, num_threads: int | None) -> None:
        import openvino

        path = folder / ONNX_FILE
        config: dict[str, Any] = {}
        if num_threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = num_threads
        try:
            core = openvino.Core()
            compiled = core.compile_model(core.read_model(str(path)), device, config)
        except RuntimeError as exc:
            raise InvalidModelFile(f"OpenVINO cannot compile {path} for {device}: {exc}") from exc
        self._request = compiled.create_infer_request()
        self._inputs = [port.get_any_name() for port in compiled.inputs]
        names = [port.get_any_name() for port in compiled.outputs]
        if "last_hidden_state" not in names:
            raise InvalidModelFile(f"{path} has no last_hidden_state output (it has {names})")
        self._output = compiled.output("last_hidden_state")
        self.config = read_config(folder, position_limit(folder))
        self.tokenizer = EncoderTokenizer.from_folder(
            folder, self.config.max_tokens, self.config.lowercase
        )
        self.artifact = str(path)
        self.device = device
        self.context_length = self.config.max_tokens

    def forward(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        result = self._request.infer({name: feeds[name] for name in self._inputs})
        return result[self._output].copy()  # type: ignore[no-any-return]

    def close(self) -> None:
        del self._request
