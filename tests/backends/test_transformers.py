"""backend="transformers" on the real offline models (converted once, then cached)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
    pytest.skip(
        'transformers extra not installed: pip install "slmkit[transformers]"',
        allow_module_level=True,
    )

import slmkit
from slmkit import errors
from slmkit._llm import LLM
from slmkit.convert import MARKER
from slmkit.params import GenerationParams

pytestmark = pytest.mark.slow

BASE = "gemma-3-270m"
CHAT = "qwen2.5-coder-0.5b-instruct"
PROMPT = "Question: What is the capital of France?\nAnswer:"


@pytest.fixture(scope="module")
def base() -> Iterator[LLM]:
    llm = slmkit.load(BASE, backend="transformers")
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def chat() -> Iterator[LLM]:
    llm = slmkit.load(CHAT, backend="transformers")
    yield llm
    llm.close()


# -- converter ------------------------------------------------------------------------


def test_a_second_convert_returns_the_cached_checkpoint_without_rebuilding(base: LLM) -> None:
    first = slmkit.convert(BASE, to="hf")
    stamp = (first / MARKER).stat().st_mtime_ns
    second = slmkit.convert(BASE, to="hf")
    assert second == first
    assert (second / MARKER).stat().st_mtime_ns == stamp


def test_the_alias_loads_the_converted_checkpoint_without_a_path(base: LLM) -> None:
    assert Path(base.info.artifact) == slmkit.convert(BASE, to="hf")
    assert base.info.backend == "transformers"
    assert base.info.device == "cpu"


def test_the_checkpoint_is_a_standard_one() -> None:
    folder = slmkit.convert(CHAT, to="hf")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["tie_word_embeddings"] is False  # this GGUF has its own output head
    generation = json.loads((folder / "generation_config.json").read_text())
    assert set(generation["eos_token_id"]) == {151645, 151643}  # <|im_end|>, <|endoftext|>
    assert "<|im_start|>" in (folder / "chat_template.jinja").read_text()
    assert list(folder.glob("*.safetensors"))


def test_the_cli_prints_the_cached_path() -> None:
    from typer.testing import CliRunner

    from slmkit.cli import app

    result = CliRunner().invoke(app, ["convert", BASE, "--to", "hf"])
    assert result.exit_code == 0, result.output
    assert str(slmkit.convert(BASE, to="hf")) in result.output


def test_the_cli_refuses_options_of_other_targets() -> None:
    from typer.testing import CliRunner

    from slmkit.cli import app

    result = CliRunner().invoke(app, ["convert", BASE, "--to", "hf", "--bits", "4"])
    assert result.exit_code == 1
    assert "precision" in result.output


# -- tokens -------------------------------------------------------------------------


def test_gemma_gets_exactly_one_bos(base: LLM) -> None:
    engine = base._engine
    assert engine.adds_bos and engine.bos_token == "<bos>"
    ids = engine.tokenize(PROMPT, add_special=True)
    assert ids[0] == 2 and ids[1] != 2


def test_qwen_chat_prompt_has_no_bos_and_ends_on_im_end(chat: LLM) -> None:
    engine = chat._engine
    assert not engine.adds_bos
    assert {151645, 151643} <= engine.eos_token_ids
    assert engine.chat_template and "<|im_start|>" in engine.chat_template


def test_special_token_text_is_split_when_not_asked_for(chat: LLM) -> None:
    engine = chat._engine
    assert engine.tokenize("<|im_end|>", add_special=True) == [151645]
    assert 151645 not in engine.tokenize("<|im_end|>", add_special=False)


def test_add_special_tokens_false_leaves_bos_to_the_core() -> None:
    with slmkit.load(BASE, backend="transformers", add_special_tokens=False) as llm:
        assert not llm._engine.adds_bos
        assert llm._engine.tokenize("Hi", add_special=True)[0] != 2


# -- generation ---------------------------------------------------------------------


def test_greedy_answer_matches_llama_cpp_on_the_same_weights(base: LLM) -> None:
    pytest.importorskip("llama_cpp", reason="llama.cpp extra not installed: no reference")
    ours = base.generate(PROMPT, max_tokens=4).text
    with slmkit.load(BASE, backend="llamacpp") as ref:
        theirs = ref.generate(PROMPT, max_tokens=4).text
    assert ours == theirs
    assert "Paris" in ours


def test_greedy_tokens_equal_model_generate_past_the_sliding_window(base: LLM) -> None:
    """The decode loop passes no attention mask; Gemma 3's 512-token window must still hold."""
    import torch

    engine = base._engine
    prompt = " ".join(f"item {i}," for i in range(200)) + " and the last item is"
    ids = engine.tokenize(prompt, add_special=True)
    assert len(ids) > 600
    tokens = engine.generate_tokens(ids, GenerationParams())
    ours = [next(tokens) for _ in range(6)]
    tokens.close()
    with torch.inference_mode():
        out = engine._model.generate(
            torch.tensor([ids]), max_new_tokens=6, min_new_tokens=6, do_sample=False
        )
    assert ours == out[0, len(ids) :].tolist()


def test_closing_the_token_stream_stops_the_loop(base: LLM) -> None:
    engine = base._engine
    tokens = engine.generate_tokens(engine.tokenize(PROMPT, add_special=True), GenerationParams())
    assert isinstance(next(tokens), int)
    tokens.close()
    with pytest.raises(StopIteration):
        next(tokens)


def test_different_seeds_sample_differently(base: LLM) -> None:
    texts = {
        base.generate("My favourite", max_tokens=10, temperature=1.5, seed=s).text for s in range(4)
    }
    assert len(texts) > 1


def test_repetition_penalty_changes_greedy_output(base: LLM) -> None:
    plain = base.generate(PROMPT, max_tokens=16).text
    penalised = base.generate(PROMPT, max_tokens=16, repetition_penalty=1.8).text
    assert plain != penalised


def test_top_k_one_is_greedy(base: LLM) -> None:
    greedy = base.generate(PROMPT, max_tokens=8).text
    assert base.generate(PROMPT, max_tokens=8, temperature=1.0, top_k=1, seed=7).text == greedy


def test_chat_answers_through_the_ggufs_template(chat: LLM) -> None:
    result = chat.chat("What is the capital of France? Answer in one word.", max_tokens=8)
    assert "Paris" in result.text
    assert result.finish_reason == "stop"


# -- options ------------------------------------------------------------------------


def test_quantization_on_cpu_is_refused_clearly() -> None:
    with pytest.raises(errors.UnsupportedFeature, match=r"quantization='8bit'.*CUDA"):
        slmkit.load(BASE, backend="transformers", quantization="8bit", device="cpu")


@pytest.mark.skipif(importlib.import_module("torch").cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_says_how_to_get_one() -> None:
    with pytest.raises(errors.BackendUnavailable, match="CUDA build"):
        slmkit.load(BASE, backend="transformers", device="cuda")


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(errors.InvalidRequest, match="quantization"):
        slmkit.load(BASE, backend="transformers", load_in_8bit=True)


def test_n_threads_and_context_length_are_applied() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        with slmkit.load(
            BASE, backend="transformers", n_threads=1, context_length=512, dtype="bfloat16"
        ) as llm:
            assert torch.get_num_threads() == 1
            assert llm.info.context_length == 512
            assert "paris" in llm.generate(PROMPT, max_tokens=3).text.lower()
    finally:
        torch.set_num_threads(before)


def test_a_checkpoint_folder_loads_by_path() -> None:
    folder = slmkit.convert(BASE, to="hf")
    with slmkit.load(str(folder), backend="transformers") as llm:
        assert llm.info.artifact == str(folder)
        assert not llm.info.is_chat


def test_a_hub_id_is_found_in_the_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = slmkit.convert(BASE, to="hf")
    repo = tmp_path / "hub" / "models--example--tiny-gemma"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for item in folder.iterdir():
        os.symlink(item, snapshot / item.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with slmkit.load("example/tiny-gemma", backend="transformers") as llm:
        assert llm.info.artifact == str(snapshot)


def test_a_hub_id_missing_from_the_cache_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        errors.ModelNotFound, match="slmkit pull example/absent --backend transformers"
    ):
        slmkit.load("example/absent", backend="transformers")


def test_a_context_length_past_the_models_positions_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="context_length <="):
        slmkit.load(BASE, backend="transformers", context_length=10**7)
