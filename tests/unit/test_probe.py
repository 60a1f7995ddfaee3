"""The hardware probe on this machine, and the ranking rules on recorded machines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import slmkit
from slmkit.backends.base import Backend, Engine, ModelRef
from slmkit.cli import app
from slmkit.probe import HardwareReport, physical_cores, probe
from slmkit.ranking import rank_backends, rule_score

RECORDED = Path(__file__).parent / "hardware"
KNOWN = ("llamacpp", "onnx", "openvino", "transformers", "mlx")


def recorded(name: str) -> HardwareReport:
    return HardwareReport.from_json((RECORDED / f"{name}.json").read_text())


def rule_order(report: HardwareReport) -> list[str]:
    return sorted(KNOWN, key=lambda name: -rule_score(name, report)[0])


def stand_in(backend_name: str, format_: str = "gguf", needs: str | None = None) -> type[Backend]:
    """A real Backend subclass standing for a runtime not installed here (rules only)."""

    class StandIn(Backend):
        name = backend_name
        extra = backend_name
        packages = ((needs, needs),) if needs else ()
        artifact_format = format_

        def load(self, model: ModelRef, options: Mapping[str, Any]) -> Engine:
            raise NotImplementedError("ranking tests never load")

    return StandIn


# -- this machine ----------------------------------------------------------------------


def test_report_of_this_machine_counts_cores_and_memory() -> None:
    report = probe(refresh=True)
    assert report.physical_cores == physical_cores() >= 1
    assert report.logical_cores == os.cpu_count()
    assert report.physical_cores <= report.logical_cores
    if sys.platform.startswith("linux"):
        assert report.memory_total_bytes and report.memory_available_bytes
        assert 0 < report.memory_available_bytes <= report.memory_total_bytes


@pytest.mark.skipif(
    Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None,
    reason="this machine has an NVIDIA driver",
)
def test_report_of_a_machine_without_nvidia_driver_lists_no_cuda_device() -> None:
    assert probe(refresh=True).nvidia == ()


def test_report_round_trips_through_json() -> None:
    report = probe()
    assert HardwareReport.from_json(report.to_json()) == report
    assert HardwareReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_probe_hardware_is_a_plain_function_next_to_the_probe_module() -> None:
    import slmkit.probe as module

    assert slmkit.probe_hardware() == module.probe()
    assert not callable(module)


def test_probe_imports_no_runtime() -> None:
    code = (
        "import sys, slmkit; slmkit.probe_hardware(); slmkit.rank_backends(); "
        "print(','.join(m for m in ('torch','openvino','llama_cpp','onnxruntime_genai',"
        "'mlx','numpy','transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_fingerprint_tells_machines_apart_and_is_stable() -> None:
    h100, laptop = recorded("nvidia_h100_linux"), recorded("intel_core_ultra_npu_linux")
    assert h100.fingerprint() == recorded("nvidia_h100_linux").fingerprint()
    assert h100.fingerprint() != laptop.fingerprint()


# -- the rule table on recorded machines ---------------------------------------------------


def test_nvidia_machine_with_gpu_builds_puts_gpu_runtimes_first() -> None:
    report = recorded("nvidia_h100_linux")
    assert report.nvidia[0].name == "NVIDIA H100 80GB HBM3"
    assert rule_order(report)[:3] == ["onnx", "llamacpp", "transformers"]
    assert "H100" in rule_score("onnx", report)[1]


def test_nvidia_machine_with_cpu_builds_says_the_gpu_is_unused() -> None:
    data = json.loads((RECORDED / "nvidia_h100_linux.json").read_text())
    data["builds"] = {"llamacpp": "cpu", "onnx": "cpu", "torch": "cpu"}
    report = HardwareReport.from_dict(data)
    assert rule_order(report)[0] == "onnx"
    assert "GPU is unused" in rule_score("llamacpp", report)[1]
    assert "onnxruntime-genai-cuda" in rule_score("onnx", report)[1]


def test_apple_silicon_puts_mlx_first_then_llamacpp_on_metal() -> None:
    report = recorded("apple_m3_pro_macos")
    assert report.apple_silicon and report.has("NEON")
    assert rule_order(report)[:2] == ["mlx", "llamacpp"]


def test_intel_laptop_with_gpu_and_npu_puts_openvino_first() -> None:
    report = recorded("intel_core_ultra_npu_linux")
    assert report.intel_gpu and report.intel_npu
    assert rule_order(report)[0] == "openvino"
    assert "Intel GPU" in rule_score("openvino", report)[1]


def test_intel_npu_without_gpu_still_prefers_openvino() -> None:
    data = json.loads((RECORDED / "intel_core_ultra_npu_linux.json").read_text())
    data["openvino_devices"] = ["CPU", "NPU"]
    report = HardwareReport.from_dict(data)
    assert rule_order(report)[0] == "openvino"
    assert "NPU" in rule_score("openvino", report)[1]


def test_x86_cpu_follows_the_measured_decode_order() -> None:
    assert rule_order(recorded("amd_epyc_2core_cpu")) == [
        "onnx",
        "openvino",
        "llamacpp",
        "transformers",
        "mlx",
    ]


def test_arm_linux_cpu_puts_llamacpp_first() -> None:
    assert rule_order(recorded("graviton_arm_linux"))[0] == "llamacpp"


def test_unknown_third_party_backend_ranks_after_the_known_ones() -> None:
    report = recorded("amd_epyc_2core_cpu")
    score, reason = rule_score("someplugin", report)
    assert score < min(rule_score(n, report)[0] for n in KNOWN if n != "mlx")
    assert "third-party" in reason


# -- rank_backends -------------------------------------------------------------------------


def test_uninstalled_backend_ranks_last_and_names_its_extra() -> None:
    missing = stand_in("onnx", "onnx", needs="no_such_runtime_pkg")
    ranking = rank_backends(
        recorded("amd_epyc_2core_cpu"), "gemma-3-270m", candidates=[missing, stand_in("mlx")]
    )
    assert [r.name for r in ranking] == ["mlx", "onnx"]
    assert not ranking[1].usable
    assert "slmkit[onnx]" in ranking[1].reason


def test_backend_whose_model_does_not_fit_in_memory_is_not_usable() -> None:
    data = json.loads((RECORDED / "amd_epyc_2core_cpu.json").read_text())
    data["memory_available_bytes"] = 1 * 2**30
    ranking = rank_backends(
        HardwareReport.from_dict(data),
        "qwen2.5-coder-0.5b-instruct",
        candidates=[stand_in("transformers", "hf"), stand_in("llamacpp", "gguf")],
    )
    by_name = {r.name: r for r in ranking}
    assert by_name["llamacpp"].usable
    assert not by_name["transformers"].usable
    assert "GiB available" in by_name["transformers"].reason


def test_rank_backends_on_this_machine_lists_only_local_backends() -> None:
    from slmkit import registry

    ranking = rank_backends(model="gemma-3-270m", measured=False)
    assert {r.name for r in ranking} <= set(registry.backend_names())
    assert all(r.reason for r in ranking)
    usable = [r for r in ranking if r.usable]
    assert ranking[: len(usable)] == usable


def test_cli_probe_json_has_hardware_and_ranking() -> None:
    result = CliRunner().invoke(app, ["probe", "--json", "--model", "gemma-3-270m"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["hardware"]["physical_cores"] == physical_cores()
    assert isinstance(data["ranking"], list)


def test_cli_probe_prints_a_table() -> None:
    result = CliRunner().invoke(app, ["probe"])
    assert result.exit_code == 0, result.output
    assert "physical" in result.output and "ranking" in result.output
