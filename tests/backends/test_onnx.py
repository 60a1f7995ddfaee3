"""ONNX Runtime GenAI specifics beyond the contract suite.

Folder picking runs on a hub-cache layout written here (the Phi-3 ONNX repos' shape);
everything else runs the real gemma-3-270m int4 artifact that `slmkit convert` makes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "onnxruntime_genai", reason="onnx extra not installed: pip install 'slmkit[onnx]'"
)

import slmkit
from slmkit import errors
from slmkit.backends.base import ModelRef
from slmkit.backends.onnx import (
    OnnxEngine,
    available_providers,
    pick_variant,
    resolve_folder,
)
from slmkit.catalog import lookup
from slmkit.convert import cached_artifact

BASE_MODEL = "gemma-3-270m"
PROMPT = "Question: What is the capital of France?\nAnswer:"

#: The layout of microsoft/Phi-3-mini-4k-instruct-onnx: one folder per provider/precision.
PHI3_VARIANTS = {
    "cpu_and_mobile/cpu-int4-rtn-block-32": [],
    "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4": [],
    "cuda/cuda-fp16": [{"cuda": {}}],
    "cuda/cuda-int4-rtn-block-32": [{"cuda": {}}],
    "directml/directml-int4-awq-block-128": [{"dml": {}}],
}


def _write_variant(folder: Path, provider_options: list[dict[str, dict[str, str]]]) -> None:
    folder.mkdir(parents=True)
    config = {
        "model": {
            "context_length": 4096,
            "decoder": {"session_options": {"provider_options": provider_options}},
        }
    }
    (folder / "genai_config.json").write_text(json.dumps(config))


@pytest.fixture
def phi3_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hub cache holding microsoft/Phi-3-mini-4k-instruct-onnx, as huggingface_hub lays it."""
    repo = tmp_path / "hub" / "models--microsoft--Phi-3-mini-4k-instruct-onnx"
    snapshot = repo / "snapshots" / "0a1b2c"
    for name, options in PHI3_VARIANTS.items():
        _write_variant(snapshot / name, options)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0a1b2c")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return snapshot


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("cpu", "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"),
        ("cuda", "cuda/cuda-int4-rtn-block-32"),
        ("dml", "directml/directml-int4-awq-block-128"),
    ],
)
def test_hub_repo_variant_is_picked_for_the_provider(
    phi3_repo: Path, provider: str, expected: str
) -> None:
    folder = resolve_folder(ModelRef("microsoft/Phi-3-mini-4k-instruct-onnx"), provider, "int4")
    assert folder == phi3_repo / expected


def test_catalog_alias_finds_its_onnx_repo_in_the_hub_cache(phi3_repo: Path) -> None:
    spec = lookup("phi-3-mini")
    folder = resolve_folder(ModelRef("phi-3-mini", spec=spec), "cpu", "int4")
    assert folder == phi3_repo / "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"


def test_a_repo_without_the_providers_variant_names_what_it_has(tmp_path: Path) -> None:
    _write_variant(tmp_path / "cpu-int4", [])
    with pytest.raises(errors.ModelNotFound, match=r"no variant for execution provider 'cuda'"):
        pick_variant(tmp_path, "cuda", "my-repo")


def test_a_folder_without_genai_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelNotFound, match="genai_config.json"):
        pick_variant(tmp_path, "cpu", "my-folder")


def test_cpu_is_always_available_and_last() -> None:
    assert available_providers()[-1] == "cpu"


def test_an_unavailable_explicit_provider_is_an_error_not_a_fallback() -> None:
    missing = next(p for p in ("cuda", "dml") if p not in available_providers())
    with pytest.raises(errors.BackendUnavailable, match=f"execution_provider='{missing}'"):
        slmkit.load(BASE_MODEL, backend="onnx", execution_provider=missing)


def test_a_missing_artifact_names_the_command_that_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With automatic conversion off, a missing artifact is an error naming the command.
    An empty cache of its own (the offline models linked in): this machine's shared cache
    may hold any conversion already."""
    from slmkit.paths import cache_dir

    models = cache_dir("models")
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    if models.is_dir():
        (tmp_path / "models").symlink_to(models, target_is_directory=True)
    monkeypatch.setenv("SLMKIT_AUTO_CONVERT", "0")
    assert cached_artifact(BASE_MODEL, "onnx", precision="fp32") is None
    with pytest.raises(errors.ModelNotFound) as info:
        slmkit.load(BASE_MODEL, backend="onnx", precision="fp32")
    assert f"`slmkit convert {BASE_MODEL} --to onnx --precision fp32`" in str(info.value)


def test_converter_refuses_fp16_on_cpu() -> None:
    with pytest.raises(errors.InvalidRequest, match="fp16 on cpu"):
        cached_artifact(BASE_MODEL, "onnx", precision="fp16", execution_provider="cpu")


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(errors.InvalidRequest, match="execution_provider"):
        slmkit.load(BASE_MODEL, backend="onnx", provider="cpu")


# -- on the real model ------------------------------------------------------------------


def _can_convert() -> bool:
    return all(importlib.util.find_spec(m) for m in ("transformers", "torch", "onnx", "onnx_ir"))


@pytest.fixture(scope="module")
def base_llm():
    if cached_artifact(BASE_MODEL, "onnx") is None and not _can_convert():
        pytest.skip("onnx-convert extra not installed and no ONNX artifact cached")
    slmkit.convert(BASE_MODEL, to="onnx")
    with slmkit.load(BASE_MODEL, backend="onnx", threads=2) as llm:
        yield llm


def _engine(llm) -> OnnxEngine:
    engine = llm._engine
    assert isinstance(engine, OnnxEngine)
    return engine


def test_alias_loads_the_converted_artifact_on_cpu(base_llm) -> None:
    assert base_llm.info.device == "cpu"
    assert Path(base_llm.info.artifact) == cached_artifact(BASE_MODEL, "onnx")
    assert base_llm.info.context_length == 4096


def test_bos_is_added_once_because_the_runtime_tokenizer_does_not(base_llm) -> None:
    engine = _engine(base_llm)
    assert engine.adds_bos and engine.bos_token == "<bos>"
    ids = engine.tokenize("Hello", add_special=True)
    assert [ids[0]] == engine.tokenize_markup("<bos>")  # add_special=False: "<bos>" is text
    assert ids[1] != ids[0]
    assert engine.tokenize("Hello", add_special=False) == ids[1:]


def test_max_length_counts_the_prompt_and_respects_the_sliding_window(base_llm) -> None:
    engine = _engine(base_llm)
    short = slmkit.GenerationParams(max_tokens=8)
    assert engine.search_options(13, short)["max_length"] == 512  # Gemma 3's window
    long = slmkit.GenerationParams(max_tokens=1000)
    assert engine.search_options(13, long)["max_length"] == 1013
    huge = slmkit.GenerationParams(max_tokens=4090)
    assert engine.search_options(100, huge)["max_length"] == 4096


def test_every_sampling_parameter_reaches_the_generator(base_llm) -> None:
    engine = _engine(base_llm)
    params = slmkit.GenerationParams(
        temperature=0.7, top_k=20, top_p=0.9, seed=7, repetition_penalty=1.2
    )
    options = engine.search_options(5, params)
    assert options["do_sample"] is True
    assert (options["temperature"], options["top_k"], options["top_p"]) == (0.7, 20, 0.9)
    assert (options["random_seed"], options["repetition_penalty"]) == (7, 1.2)
    first = base_llm.generate(PROMPT, max_tokens=6, **params.model_dump(exclude={"max_tokens"}))
    again = base_llm.generate(PROMPT, max_tokens=6, **params.model_dump(exclude={"max_tokens"}))
    assert first.text == again.text and first.usage.completion_tokens >= 1


def test_top_k_beyond_the_vocabulary_means_no_limit(base_llm) -> None:
    params = slmkit.GenerationParams(temperature=0.5, top_k=10_000_000, seed=1)
    assert _engine(base_llm).search_options(5, params)["top_k"] == 262_144
    result = base_llm.generate(PROMPT, max_tokens=3, **params.model_dump(exclude={"max_tokens"}))
    assert result.usage.completion_tokens >= 1


def test_greedy_ignores_defaults_baked_into_genai_config(base_llm) -> None:
    options = _engine(base_llm).search_options(5, slmkit.GenerationParams())
    assert options["do_sample"] is False and options["repetition_penalty"] == 1.0


def test_streamed_pieces_decode_like_the_whole_sequence(base_llm) -> None:
    engine = _engine(base_llm)
    ids = engine.tokenize("Café 猫 ねこ 🐱 naïve", add_special=False)
    detokenizer = engine.detokenizer()
    assert "".join(detokenizer.add(i) for i in ids) + detokenizer.flush() == engine.decode(ids)


def test_context_length_option_is_bounded_by_the_model() -> None:
    if cached_artifact(BASE_MODEL, "onnx") is None:
        pytest.skip("no ONNX artifact cached (made by the base_llm fixture)")
    with slmkit.load(BASE_MODEL, backend="onnx", context_length=600) as small:
        assert small.info.context_length == 600
        with pytest.raises(errors.ContextLengthExceeded):
            small.generate("hello " * 590, max_tokens=20)
    with pytest.raises(errors.InvalidRequest, match="context_length"):
        slmkit.load(BASE_MODEL, backend="onnx", context_length=1_000_000)
    with pytest.raises(errors.InvalidRequest, match="sliding window"):
        slmkit.load(BASE_MODEL, backend="onnx", context_length=256)


def test_a_genai_folder_loads_by_path(base_llm) -> None:
    folder = base_llm.info.artifact
    with slmkit.load(folder, backend="onnx") as llm:
        assert llm.info.artifact == folder
        assert "paris" in llm.generate(PROMPT, max_tokens=8).text.lower()


def test_running_needs_neither_torch_nor_transformers(base_llm) -> None:
    code = (
        "import sys, slmkit\n"
        f"llm = slmkit.load({BASE_MODEL!r}, backend='onnx')\n"
        f"assert 'paris' in llm.generate({PROMPT!r}, max_tokens=8).text.lower()\n"
        "print(sorted(m for m in ('torch', 'transformers', 'onnx_ir') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- the int8 prompt model (convert --to onnx --prefill int8, the CPU default) ----------

CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
CAPITAL = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def chat_folder() -> Path:
    if cached_artifact(CHAT_MODEL, "onnx") is None and not _can_convert():
        pytest.skip("onnx-convert extra not installed and no ONNX artifact cached")
    return slmkit.convert(CHAT_MODEL, to="onnx")


def test_an_int4_cpu_folder_reads_prompts_with_its_int8_model(chat_folder: Path) -> None:
    assert (chat_folder / "prefill.onnx").is_file() and (chat_folder / "prefill.json").is_file()
    answers = {}
    for wanted in (None, False):
        with slmkit.load(CHAT_MODEL, backend="onnx", prefill_model=wanted, threads=2) as llm:
            answers[wanted] = (llm.info.extra["onnx"]["prompts_read_by"], llm.chat(CAPITAL))
    assert answers[None][0] == "prefill.onnx (int8)"
    assert answers[False][0] == "the decoding model"
    for _, result in answers.values():  # the int8 prompt model keeps the answer right
        assert "Paris" in result.text and result.finish_reason == "stop"


def test_prefix_reuse_reads_prompts_with_the_decoding_model(chat_folder: Path) -> None:
    with slmkit.load(CHAT_MODEL, backend="onnx", prefix_reuse=True, threads=2) as llm:
        assert llm.info.extra["onnx"]["prompts_read_by"] == "the decoding model"
    with pytest.raises(errors.InvalidRequest, match="cannot rewind a pipeline"):
        slmkit.load(CHAT_MODEL, backend="onnx", prefix_reuse=True, prefill_model=True)


def test_a_folder_without_a_prompt_model_refuses_an_explicit_one(base_llm) -> None:
    # Gemma 3 has a sliding window, which the pipeline would cut prompts by: no prompt model
    folder = Path(base_llm.info.artifact)
    assert not (folder / "prefill.onnx").exists()
    assert base_llm.info.extra["onnx"]["prompts_read_by"] == "the decoding model"
    with pytest.raises(errors.InvalidRequest, match="no int8 prompt model"):
        slmkit.load(BASE_MODEL, backend="onnx", prefill_model=True)


def test_int8_weights_compute_what_the_fp32_graph_does(tmp_path: Path) -> None:
    """The rewrite on a small graph (an embedding Gather, then a MatMul), run by ONNX
    Runtime itself: per-column int8 weights stay within 7-bit quantization error."""
    onnx = pytest.importorskip("onnx", reason="onnx-convert extra not installed")
    import numpy as np
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from slmkit.convert.onnx_prefill import _quantize

    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 16)).astype(np.float32)
    weight = (rng.normal(size=(16, 12)) * rng.uniform(0.01, 3, size=12)).astype(np.float32)
    square = (rng.normal(size=(16, 16)) * rng.uniform(0.01, 3, size=16)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["rows"]),
            helper.make_node("MatMul", ["rows", "weight"], ["out"]),
            # one weight read two ways: gathered by row and multiplied by column
            helper.make_node("Gather", ["square", "ids"], ["square_rows"]),
            helper.make_node("MatMul", ["square_rows", "square"], ["again"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, None])],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, None, 12]),
            helper.make_tensor_value_info("again", TensorProto.FLOAT, [1, None, 16]),
        ],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(square, "square"),
        ],
    )
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32)
    _quantize(fp32, int8)
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert "DynamicQuantizeMatMul" in ops and "MatMul" not in ops
    ids = {"ids": np.array([[3, 0, 15, 7]], dtype=np.int64)}
    want, got = (
        onnxruntime.InferenceSession(str(f), providers=["CPUExecutionProvider"]).run(None, ids)
        for f in (fp32, int8)
    )
    for expected, actual in zip(want, got, strict=True):
        scale = np.abs(expected).max(axis=(0, 1))  # per output column: one weight scale each
        assert np.all(np.abs(actual - expected) <= 0.05 * scale)
