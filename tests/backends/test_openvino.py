"""OpenVINO GenAI specifics beyond the contract suite, on the real offline models' IRs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip(
    "openvino_genai", reason="openvino extra not installed: pip install 'slmkit[openvino]'"
)

import slmkit
from slmkit import errors
from slmkit.backends.base import Request
from slmkit.backends.openvino import available_devices
from slmkit.convert import openvino as ov_target
from slmkit.params import GenerationParams

BASE_MODEL = "gemma-3-270m"
CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
OPEN_PROMPT = "Once upon a time, in a small village by the sea, there lived"


@pytest.fixture(scope="module")
def base_ir() -> Path:
    return slmkit.convert(BASE_MODEL, to="openvino")  # cached after the first run


@pytest.fixture(scope="module")
def llm(base_ir: Path):
    with slmkit.load(BASE_MODEL, backend="openvino") as llm:
        yield llm


def test_catalog_alias_loads_the_converted_int4_ir(llm, base_ir: Path) -> None:
    assert llm.info.artifact == str(base_ir)
    assert base_ir.name == "openvino-int4"
    assert llm.info.device in available_devices() or llm.info.device == "GPU"
    assert llm.info.context_length == 4096


def test_ir_folder_path_loads_with_its_chat_template() -> None:
    folder = slmkit.convert(CHAT_MODEL, to="openvino")
    with slmkit.load(str(folder), backend="openvino", device="CPU") as chat:
        assert chat.info.is_chat
        assert "paris" in chat.chat("Capital of France? One word.", max_tokens=8).text.lower()


def test_hub_id_resolves_from_the_hf_cache(
    base_ir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "models--OpenVINO--gemma-3-270m-int4-ov" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for file in base_ir.iterdir():
        (snapshot / file.name).symlink_to(file)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with slmkit.load("OpenVINO/gemma-3-270m-int4-ov", backend="openvino") as hub:
        assert hub.info.artifact == str(snapshot)
        assert hub.generate(OPEN_PROMPT, max_tokens=3).usage.completion_tokens == 3


def test_missing_conversion_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_AUTO_CONVERT", "0")  # else it converts (and fails on this file)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(errors.ModelNotFound, match=r"slmkit convert .*tiny\.gguf --to openvino"):
        slmkit.load(str(gguf), backend="openvino")


def test_missing_variant_names_the_weight_format(
    base_ir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slmkit.convert import cached_artifact

    if cached_artifact(BASE_MODEL, "openvino", weight_format="fp16") is not None:
        pytest.skip("the fp16 variant is already converted here")
    monkeypatch.setenv("SLMKIT_AUTO_CONVERT", "0")  # else it would convert for minutes
    with pytest.raises(errors.ModelNotFound, match="--weight-format fp16"):
        slmkit.load(BASE_MODEL, backend="openvino", weight_format="fp16")


def test_explicit_absent_device_is_an_error(base_ir: Path) -> None:
    if any(d.startswith("NPU") for d in available_devices()):
        pytest.skip("this machine has an NPU")
    with pytest.raises(errors.BackendUnavailable, match="NPU is not present"):
        slmkit.load(BASE_MODEL, backend="openvino", device="NPU")


def test_unknown_device_is_an_error(base_ir: Path) -> None:
    with pytest.raises(errors.BackendUnavailable, match="CPU, GPU, NPU, AUTO"):
        slmkit.load(BASE_MODEL, backend="openvino", device="TPU")


def test_folder_without_tokenizer_ir_is_refused(base_ir: Path, tmp_path: Path) -> None:
    (tmp_path / "openvino_model.xml").symlink_to(base_ir / "openvino_model.xml")
    with pytest.raises(errors.InvalidModelFile, match="convert_tokenizer"):
        slmkit.load(str(tmp_path), backend="openvino")


def test_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(errors.InvalidRequest, match="num_threads"):
        slmkit.load(BASE_MODEL, backend="openvino", n_threads=2)


def test_options_reach_the_pipeline(base_ir: Path) -> None:
    with slmkit.load(BASE_MODEL, backend="openvino", context_length=64, num_threads=1) as small:
        assert small.info.context_length == 64
        assert small.generate(OPEN_PROMPT, max_tokens=2).usage.completion_tokens == 2
        with pytest.raises(errors.ContextLengthExceeded):
            small.generate("hello " * 60, max_tokens=10)


def test_openvino_perf_metrics_are_reported(llm) -> None:
    result = llm.generate(OPEN_PROMPT, max_tokens=6)
    metrics = result.runtime["openvino"]["perf_metrics"]
    assert metrics["generated_tokens"] == 6
    assert metrics["input_tokens"] == result.usage.prompt_tokens
    assert metrics["ttft_ms"] > 0 and metrics["throughput_tokens_per_s"] > 0
    assert llm.info.extra["openvino"]["load_time_s"] > 0


def test_closing_the_stream_stops_the_pipeline(llm) -> None:
    engine = llm._engine
    request = Request(
        GenerationParams(max_tokens=200), engine.tokenize(OPEN_PROMPT, add_special=True)
    )
    events = engine.run(request)
    for index, _event in enumerate(events):
        if index == 2:
            break
    events.close()
    # the streamer answered STOP: OpenVINO is never more than a token or two ahead
    assert request.facts["openvino"]["perf_metrics"]["generated_tokens"] <= 10


def test_params_map_onto_generation_config(llm) -> None:
    engine = llm._engine
    greedy = engine.generation_config(GenerationParams(max_tokens=9, repetition_penalty=1.2))
    assert greedy.max_new_tokens == 9 and not greedy.do_sample
    assert greedy.repetition_penalty == pytest.approx(1.2)
    assert not greedy.apply_chat_template
    assert set(greedy.stop_token_ids) == set(engine.eos_token_ids)
    sampled = engine.generation_config(
        GenerationParams(temperature=0.7, top_p=0.9, top_k=40, seed=7)
    )
    assert sampled.do_sample and sampled.rng_seed == 7 and sampled.top_k == 40
    assert sampled.temperature == pytest.approx(0.7) and sampled.top_p == pytest.approx(0.9)


def test_different_seeds_sample_differently(llm) -> None:
    texts = {
        llm.generate(OPEN_PROMPT, max_tokens=12, temperature=1.0, seed=seed).text
        for seed in (1, 2, 3)
    }
    assert len(texts) > 1


def test_weight_format_is_validated() -> None:
    assert ov_target.variant() == "int4"
    assert ov_target.variant(weight_format="INT8") == "int8"
    with pytest.raises(errors.InvalidRequest, match="int4, int8, fp16"):
        slmkit.convert(BASE_MODEL, to="openvino", weight_format="int3")
    with pytest.raises(errors.InvalidRequest, match="weight_format"):
        slmkit.convert(BASE_MODEL, to="openvino", bits=4)


def test_exporter_environment_holds_no_cuda_packages(base_ir: Path) -> None:
    python = Path(
        os.environ.get("SLMKIT_OPENVINO_EXPORT_PYTHON")
        or ov_target.exporter_env_dir() / "bin/python"
    )
    if not python.is_file():
        pytest.skip("the IR came from the cache; the exporter environment was not built here")
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.lower()
    assert "torch==2.13.0" in listing
    assert "nvidia-" not in listing and "torchvision" not in listing


def test_a_failed_export_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    if not ov_target._python_in(ov_target.exporter_env_dir()).is_file():
        pytest.skip("the exporter environment was not built here (it takes minutes)")
    checkpoint = tmp_path / "broken-checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"model_type": "no-such-architecture"}')
    out = tmp_path / "ir"
    with pytest.raises(errors.ConversionError, match="optimum-cli export openvino failed"):
        slmkit.convert(str(checkpoint), to="openvino", out=out)
    assert not out.exists()


@pytest.fixture(scope="module")
def chat_llm():
    pytest.importorskip("llguidance", reason='structured extra not installed: "slmkit[structured]"')
    with slmkit.load(CHAT_MODEL, backend="openvino") as llm:
        yield llm


def _schema_format(schema: dict[str, object]) -> dict[str, object]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def test_schemas_go_to_openvino_as_compact_ebnf(chat_llm) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "tags": {"type": "array", "items": {"enum": ["big", "old"]}, "maxItems": 2},
        },
        "required": ["city", "tags"],
    }
    result = chat_llm.chat("Name a city.", response_format=_schema_format(schema), max_tokens=40)
    assert result.runtime["openvino"]["grammar"] == "ebnf"
    assert result.finish_reason == "stop", result.text
    assert " " not in result.text.replace(result.parsed["city"], "")  # no free whitespace
    assert set(result.parsed) == {"city", "tags"}


def test_a_schema_outside_the_ebnf_uses_openvinos_json_mode(chat_llm) -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["code"],
    }
    result = chat_llm.chat(
        "The airport code of Paris?", response_format=_schema_format(schema), max_tokens=40
    )
    assert result.runtime["openvino"]["grammar"] == "json_schema"
    if result.finish_reason == "stop":  # free whitespace may run it to the length limit
        assert result.parsed is not None and len(result.parsed["code"]) == 3


def test_a_lark_grammar_is_refused_by_name(chat_llm) -> None:
    with pytest.raises(errors.UnsupportedFeature, match="'openvino'.*'grammar'"):
        chat_llm.chat("hi", response_format={"type": "grammar", "lark": 'start: "a"'})


@pytest.fixture(scope="module")
def batching_llm():
    with slmkit.load(CHAT_MODEL, backend="openvino", continuous_batching=True) as llm:
        yield llm


QUESTION = "Name the capital of France, then describe that city in two sentences."


def test_continuous_batching_answers_as_the_plain_pipeline_does(batching_llm, chat_llm) -> None:
    assert batching_llm._engine.capabilities.batching
    batched = batching_llm.chat(QUESTION, max_tokens=24)
    assert batched.text == chat_llm.chat(QUESTION, max_tokens=24).text
    assert "Paris" in batched.text
    # OpenVINO's prefix caching under batching too: the same prompt again reuses its blocks
    assert batching_llm._engine.capabilities.prefix_reuse
    again = batching_llm.chat(QUESTION, max_tokens=24)
    assert again.usage.cached_tokens > 0
    assert again.text == batched.text


def test_concurrent_requests_run_together(batching_llm) -> None:
    import threading
    import time

    marks: dict[int, tuple[float, float]] = {}
    texts: dict[int, str] = {}

    def one(index: int) -> None:
        first, parts = None, []
        for chunk in batching_llm.stream(QUESTION, max_tokens=24):
            if chunk.text and first is None:
                first = time.perf_counter()
            parts.append(chunk.text)
        marks[index] = (first or 0.0, time.perf_counter())
        texts[index] = "".join(parts)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(marks) == 4
    assert all("Paris" in text for text in texts.values()), texts
    # three of the four had their first token before any had finished: they ran batched
    firsts, ends = [first for first, _ in marks.values()], [end for _, end in marks.values()]
    assert sorted(firsts)[2] < min(ends), (firsts, ends)


def test_closing_a_batched_stream_cancels_it(batching_llm) -> None:
    import time

    stream = batching_llm.stream(QUESTION, max_tokens=400)
    next(iter(stream))
    stream.close()
    pipe = batching_llm._engine._pipe
    deadline = time.monotonic() + 10
    while pipe.has_non_finished_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pipe.has_non_finished_requests()
    assert "Paris" in batching_llm.chat(QUESTION, max_tokens=12).text


def test_structured_output_is_refused_under_continuous_batching(batching_llm) -> None:
    with pytest.raises(errors.UnsupportedFeature, match="'openvino'"):
        batching_llm.chat("hi", response_format={"type": "json_object"})
