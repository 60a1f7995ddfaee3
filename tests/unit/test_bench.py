"""slmkit bench: aggregation, a tiny real run on llama.cpp, and autotune storage."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

import slmkit
from slmkit.backends.base import Backend, Engine, ModelRef
from slmkit.bench import autotune, decode_limit, memory_bandwidth, run_bench, summarize
from slmkit.cli import app
from slmkit.paths import cache_dir
from slmkit.probe import HardwareReport, probe
from slmkit.ranking import backend_versions, load_measurement, rank_backends, store_measurement

MODEL = "gemma-3-270m"
needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason='llama.cpp extra not installed: pip install "slmkit[llamacpp]"',
)


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir for measurements that still finds the assembled models."""
    models = cache_dir("models")
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    if models.is_dir():
        (tmp_path / "models").symlink_to(models, target_is_directory=True)
    return tmp_path


def run(ttft: float, decode: float, prompt: int = 50, made: int = 16) -> dict[str, Any]:
    return {
        "ttft_s": ttft,
        "decode_tok_s": decode,
        "total_s": ttft + (made / decode if decode else 0.0),
        "prompt_tokens": prompt,
        "completion_tokens": made,
    }


# -- aggregation -----------------------------------------------------------------------


def test_summary_takes_medians_over_runs() -> None:
    summary = summarize([run(0.1, 80), run(0.3, 60), run(0.2, 100)])
    assert summary["runs"] == 3
    assert summary["ttft_s"] == pytest.approx(0.2)
    assert summary["decode_tok_s"] == pytest.approx(80)
    assert summary["prefill_tok_s"] == pytest.approx(50 / 0.2)


def test_summary_ignores_runs_that_made_a_single_token_for_decode() -> None:
    summary = summarize([run(0.1, 0.0, made=1), run(0.1, 90)])
    assert summary["decode_tok_s"] == pytest.approx(90)


def test_decode_limit_is_bandwidth_over_bytes_per_token() -> None:
    assert decode_limit(40e9, 250_000_000) == pytest.approx(160)
    assert decode_limit(None, 250_000_000) is None


def test_memory_bandwidth_is_measured_in_bytes_per_second() -> None:
    assert memory_bandwidth(seconds=0.05) > 1e8


# -- a tiny real run --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip('llama.cpp extra not installed: pip install "slmkit[llamacpp]"')
    yield run_bench(MODEL, ["llamacpp"], repeats=2, max_tokens=3, overhead=True)


@needs_llamacpp
def test_tiny_bench_reports_every_figure(tiny_report: dict[str, Any]) -> None:
    (row,) = tiny_report["results"]
    assert "error" not in row, row
    assert row["backend"] == "llamacpp" and row["repeats_done"] == 2
    assert row["load_s"] > 0 and row["ttft_s"] > 0 and row["decode_tok_s"] > 0
    rates = sorted(run["prompt_tokens"] / run["ttft_s"] for run in row["raw"])
    assert row["prefill_tok_s"] == pytest.approx(sum(rates) / len(rates))  # median of two
    assert 1 <= row["completion_tokens"] <= 3
    assert row["artifact_bytes"] == Path(row["artifact"]).stat().st_size
    assert row["peak_rss_bytes"] > row["artifact_bytes"] / 2
    assert 0 < row["decode_fraction"] == row["decode_tok_s"] / row["decode_limit_tok_s"]
    assert row["versions"]["llama-cpp-python"]


@needs_llamacpp
def test_tiny_bench_times_slmkit_against_the_runtime_called_directly(
    tiny_report: dict[str, Any],
) -> None:
    (row,) = tiny_report["results"]
    assert row["overhead_ratio"] > 0
    assert row["overhead_direct_decode_tok_s"] > 0
    assert row["overhead_pairs"] >= 1


@needs_llamacpp
def test_tiny_bench_report_is_json_and_names_the_fastest(tiny_report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(tiny_report)) == tiny_report
    assert tiny_report["fastest"] == "llamacpp"
    assert tiny_report["memory_bandwidth_bytes_s"] > 0
    assert HardwareReport.from_dict(tiny_report["hardware"]).fingerprint() == tiny_report["machine"]


def test_a_backend_that_fails_costs_one_row_not_the_run() -> None:
    report = run_bench(MODEL, ["no-such-backend"], repeats=1, max_tokens=2)
    (row,) = report["results"]
    assert "UnknownBackend" in row["error"]
    assert report["fastest"] is None


@needs_llamacpp
def test_cli_bench_json(own_cache: Path) -> None:
    args = ["bench", "-m", MODEL, "--backends", "llamacpp", "-n", "1", "--max-tokens", "2"]
    saved, chart = own_cache / "bench.json", own_cache / "bench.svg"
    options = ["--json", "--autotune", "--save", str(saved), "--plot", str(chart)]
    result = CliRunner().invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["plot_file"] == str(chart)
    assert "llamacpp" in ElementTree.parse(chart).getroot().itertext()
    assert json.loads(saved.read_text())["results"] == data["results"]
    assert data["results"][0]["backend"] == "llamacpp"
    assert Path(data["autotune_file"]).is_relative_to(own_cache)


# -- autotune ---------------------------------------------------------------------------


def stand_in(backend_name: str) -> type[Backend]:
    class StandIn(Backend):
        name = backend_name
        extra = backend_name

        def load(self, model: ModelRef, options: Mapping[str, Any]) -> Engine:
            raise NotImplementedError("ranking tests never load")

    return StandIn


def measurement(cls: type[Backend], tok_s: float) -> dict[str, Any]:
    return {"backend": cls.name, "versions": backend_versions(cls), "decode_tok_s": tok_s}


def test_stored_measurement_beats_the_rule_table(own_cache: Path) -> None:
    onnx, llamacpp = stand_in("onnx"), stand_in("llamacpp")
    report = probe()
    by_rules = rank_backends(report, MODEL, candidates=[onnx, llamacpp])
    store_measurement(report, MODEL, [measurement(onnx, 50.0), measurement(llamacpp, 90.0)])
    measured = rank_backends(report, MODEL, candidates=[onnx, llamacpp])
    if report.arch == "x86_64" and not report.gpus:
        assert [r.name for r in by_rules] == ["onnx", "llamacpp"]
    assert [r.name for r in measured] == ["llamacpp", "onnx"]
    assert measured[0].source == "measured" and "90.0 tok/s" in measured[0].reason


def test_measurement_of_other_backend_versions_is_ignored(own_cache: Path) -> None:
    onnx = stand_in("onnx")
    stale = {**measurement(onnx, 500.0), "versions": {"slmkit": "0.0.1"}}
    store_measurement(probe(), MODEL, [stale])
    (entry,) = rank_backends(probe(), MODEL, candidates=[onnx])
    assert entry.source == "rules"


def test_measurements_are_kept_per_machine(own_cache: Path) -> None:
    other = HardwareReport.from_json(
        (Path(__file__).parent / "hardware" / "nvidia_h100_linux.json").read_text()
    )
    store_measurement(other, MODEL, [measurement(stand_in("onnx"), 500.0)])
    assert load_measurement(other, MODEL) is not None
    assert load_measurement(probe(), MODEL) is None


@needs_llamacpp
def test_auto_prefers_the_stored_measurement_and_says_so(
    own_cache: Path, tiny_report: dict[str, Any]
) -> None:
    autotune(tiny_report)
    llm = slmkit.load(MODEL, backend="auto")
    try:
        assert llm.info.backend == "llamacpp"
        assert llm.info.reason.startswith("auto: measured")
    finally:
        llm.close()


@needs_llamacpp
def test_explicit_backend_is_chosen_explicitly(own_cache: Path) -> None:
    llm = slmkit.load(MODEL, backend="llamacpp")
    try:
        assert llm.info.reason == "chosen explicitly"
    finally:
        llm.close()
