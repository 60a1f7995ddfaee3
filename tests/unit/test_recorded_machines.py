"""The probe's readers and the ranking on machines recorded elsewhere (macOS, Windows,
ARM, NVIDIA, AMD, Intel GPU/NPU): each platform's branch runs here, so a change that
breaks one fails on Linux too. Sources of every recording: hardware/recorded/README.md."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from slmkit.backends.base import Backend
from slmkit.backends.llamacpp import LlamaCppBackend
from slmkit.backends.mlx import MlxBackend
from slmkit.backends.onnx import OnnxBackend
from slmkit.backends.openvino import OpenVINOBackend
from slmkit.backends.transformers import TransformersBackend
from slmkit.hostfacts import (
    GPU,
    cpuinfo_physical_cores,
    normalise_arch,
    nvidia_proc_gpus,
    nvidia_smi_gpus,
    parse_cpuinfo,
    parse_meminfo,
)
from slmkit.probe import HardwareReport, implied_openvino_devices, read_report, runtime_builds
from slmkit.ranking import rank_backends

from .recorded_machines import MACHINES, RECORDED, machine_info, recorded_host

GiB = 2**30
ZEN4 = ("AVX", "AVX-512", "AVX-512-BF16", "AVX-512-VNNI", "AVX2", "F16C", "FMA")
#: Sapphire Rapids adds AMX, AVX-512-FP16 and AVX-VNNI to Zen 4's list.
SAPPHIRE_RAPIDS = tuple(sorted({*ZEN4, "AMX", "AMX-BF16", "AMX-INT8", "AVX-512-FP16", "AVX-VNNI"}))

#: What the probe must read from each recording: (os, arch, cpu model, vector extensions,
#: physical cores, logical cores, memory total, memory available).
FACTS: dict[str, tuple[str, str, str, tuple[str, ...], int, int, int | None, int | None]] = {
    "linux-x86_64-amd-epyc-2core-vm": (
        "linux", "x86_64", "AMD EPYC",
        ZEN4,
        2, 2, 24684084 * 1024, 16465884 * 1024,
    ),
    "linux-x86_64-xeon-8488c-amx-vm": (
        "linux", "x86_64", "Intel(R) Xeon(R) Platinum 8488C",
        SAPPHIRE_RAPIDS,
        2, 4, 16053556 * 1024, 15431004 * 1024,
    ),
    "linux-x86_64-xeon-8480-h100-vm": (
        "linux", "x86_64", "Intel(R) Xeon(R) Platinum 8480+",
        SAPPHIRE_RAPIDS,
        26, 26, 231020236 * 1024, 226871340 * 1024,
    ),
    "linux-x86_64-core-ultra-7-155h-laptop": (
        "linux", "x86_64", "Intel(R) Core(TM) Ultra 7 155H",
        ("AVX", "AVX-VNNI", "AVX2", "F16C", "FMA"),
        16, 22, 32642472 * 1024, 23593008 * 1024,
    ),
    "linux-x86_64-ryzen-7950x-radeon-7900xtx": (
        "linux", "x86_64", "AMD Ryzen 9 7950X 16-Core Processor",
        ZEN4,
        16, 32, 65002420 * 1024, 58741232 * 1024,
    ),
    "linux-x86_64-2x-rtx4090-container-no-smi": (
        "linux", "x86_64", "AMD Ryzen 7 7700X 8-Core Processor",
        ZEN4,
        8, 16, 65030412 * 1024, 57960100 * 1024,
    ),
    # ARM /proc/cpuinfo has no core ids: the probe counts the logical CPUs.
    "linux-arm64-graviton3-vm": (
        "linux", "arm64", "", ("I8MM", "NEON", "NEON-DOTPROD", "SVE"),
        8, 8, 15943864 * 1024, 15437976 * 1024,
    ),
    "linux-arm64-raspberry-pi-4": (
        "linux", "arm64", "BCM2835", ("NEON",), 4, 4, 3885460 * 1024, 3398176 * 1024,
    ),
    "macos-arm64-m3-pro": (
        "darwin", "arm64", "Apple M3 Pro", ("I8MM", "NEON", "NEON-DOTPROD"),
        12, 12, 36 * GiB, None,
    ),
    "macos-arm64-m1": (
        "darwin", "arm64", "Apple M1", ("NEON", "NEON-DOTPROD"), 8, 8, 16 * GiB, None,
    ),
    "macos-x86_64-core-i9-9880h": (
        "darwin", "x86_64", "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz",
        ("AVX", "AVX2", "F16C", "FMA"), 8, 16, 16 * GiB, None,
    ),
    # Windows: three IsProcessorFeaturePresent codes only, and no physical-core reader.
    "windows-x86_64-core-ultra-7-155h": (
        "windows", "x86_64", "Intel64 Family 6 Model 170 Stepping 4, GenuineIntel",
        ("AVX", "AVX2"), 22, 22, 33727385600, 19802234880,
    ),
    "windows-arm64-snapdragon-x-elite": (
        "windows", "arm64",
        "ARMv8 (64-bit) Family 8 Model 1 Revision 201, Qualcomm Technologies Inc",
        ("NEON",), 12, 12, 16775217152, 8922894336,
    ),
    "freebsd-x86_64": ("freebsd", "x86_64", "amd64", (), 8, 8, None, None),
}  # fmt: skip

#: The accelerators and platform flags each recording must yield.
ACCELERATORS: dict[str, tuple[list[GPU], dict[str, bool]]] = {
    "linux-x86_64-xeon-8480-h100-vm": (
        [GPU("nvidia", "NVIDIA H100 PCIe", "cuda", 81559 * 2**20, "550.54.15")],
        {},
    ),
    "linux-x86_64-2x-rtx4090-container-no-smi": (
        [GPU("nvidia", "NVIDIA GeForce RTX 4090", "cuda", None, "560.35.03")] * 2,
        {},
    ),
    "linux-x86_64-core-ultra-7-155h-laptop": (
        [
            GPU("intel", "INTEL GPU 0x7d55", "xpu", None, "i915", integrated=True),
            GPU("intel", "Intel NPU", "npu", None, "intel_vpu", integrated=True),
        ],
        {},
    ),
    "linux-x86_64-ryzen-7950x-radeon-7900xtx": (
        [
            GPU("amd", "AMD GPU 0x744c", "rocm", 25753026560, "amdgpu", integrated=False),
            GPU("amd", "AMD GPU 0x164e", "rocm", 512 * 2**20, "amdgpu", integrated=True),
        ],
        {"rocm": True},
    ),
    "macos-arm64-m3-pro": (
        [GPU("apple", "Apple M3 Pro", "metal")],
        {"apple_silicon": True, "metal": True},
    ),
    "macos-arm64-m1": ([GPU("apple", "Apple M1", "metal")], {"apple_silicon": True, "metal": True}),
    "macos-x86_64-core-i9-9880h": ([], {"metal": True}),
    "windows-x86_64-core-ultra-7-155h": ([], {"directml": True}),
    "windows-arm64-snapdragon-x-elite": ([], {"directml": True}),
}

#: backend="auto"'s order of the five local runtimes on each machine, with its recorded
#: runtime builds; a name in UNUSABLE has no build for that platform.
ORDER = {
    "linux-x86_64-amd-epyc-2core-vm": ["onnx", "openvino", "llamacpp", "transformers", "mlx"],
    "linux-x86_64-xeon-8488c-amx-vm": ["onnx", "openvino", "llamacpp", "transformers", "mlx"],
    "linux-x86_64-xeon-8480-h100-vm": ["onnx", "llamacpp", "transformers", "openvino", "mlx"],
    "linux-x86_64-2x-rtx4090-container-no-smi": [
        "onnx", "llamacpp", "transformers", "openvino", "mlx",
    ],
    "linux-x86_64-core-ultra-7-155h-laptop": [
        "openvino", "onnx", "llamacpp", "transformers", "mlx",
    ],
    "linux-x86_64-ryzen-7950x-radeon-7900xtx": [
        "llamacpp", "transformers", "onnx", "openvino", "mlx",
    ],
    "linux-arm64-graviton3-vm": ["llamacpp", "onnx", "openvino", "transformers", "mlx"],
    "linux-arm64-raspberry-pi-4": ["llamacpp", "onnx", "openvino", "transformers", "mlx"],
    "macos-arm64-m3-pro": ["mlx", "llamacpp", "onnx", "transformers", "openvino"],
    "macos-arm64-m1": ["mlx", "onnx", "llamacpp", "transformers", "openvino"],
    "macos-x86_64-core-i9-9880h": ["onnx", "openvino", "llamacpp", "transformers", "mlx"],
    "windows-x86_64-core-ultra-7-155h": ["onnx", "openvino", "llamacpp", "transformers", "mlx"],
    "windows-arm64-snapdragon-x-elite": ["onnx", "llamacpp", "openvino", "transformers", "mlx"],
    "freebsd-x86_64": ["onnx", "openvino", "llamacpp", "transformers", "mlx"],
}  # fmt: skip
UNUSABLE = {
    "macos-x86_64-core-i9-9880h": {"mlx": "MLX needs Apple silicon"},
    "windows-x86_64-core-ultra-7-155h": {"mlx": "MLX has no build for Windows"},
    "windows-arm64-snapdragon-x-elite": {"mlx": "MLX has no build for Windows"},
    "freebsd-x86_64": {"mlx": "MLX has no build for freebsd"},
}
BUILT_INS: tuple[type[Backend], ...] = (
    LlamaCppBackend,
    OnnxBackend,
    OpenVINOBackend,
    TransformersBackend,
    MlxBackend,
)


def as_installed(cls: type[Backend]) -> type[Backend]:
    """The real backend class with its packages taken as installed: the ranking of a
    recorded machine must not depend on which extras this test session has."""
    return type(cls.__name__, (cls,), {"missing_package": classmethod(lambda _: None)})


def recorded_report(name: str, tmp_path: Path) -> HardwareReport:
    """The probe's report from the raw recording, with the runtime builds installed there
    (and the OpenVINO devices its accelerators imply) instead of this environment's."""
    report = read_report(recorded_host(name, tmp_path))
    builds: dict[str, Any] = machine_info(name)["builds"]
    return dataclasses.replace(
        report, builds=builds, openvino_devices=implied_openvino_devices(report.gpus)
    )


def test_every_recording_has_facts_and_a_ranking_to_check() -> None:
    assert set(MACHINES) == set(FACTS) == set(ORDER)
    for name in MACHINES:
        info = machine_info(name)
        assert info["machine"] and isinstance(info["tools"], dict), name


@pytest.mark.parametrize("name", MACHINES)
def test_probe_reads_cpu_and_memory_of_recorded_machine(name: str, tmp_path: Path) -> None:
    report = read_report(recorded_host(name, tmp_path))
    found = (
        report.os,
        report.arch,
        report.cpu_model,
        report.vector_extensions,
        report.physical_cores,
        report.logical_cores,
        report.memory_total_bytes,
        report.memory_available_bytes,
    )
    assert found == FACTS[name]
    assert report.os_release == machine_info(name)["platform"]["release"]


@pytest.mark.parametrize("name", MACHINES)
def test_probe_reads_accelerators_of_recorded_machine(name: str, tmp_path: Path) -> None:
    report = read_report(recorded_host(name, tmp_path))
    gpus, flags = ACCELERATORS.get(name, ([], {}))
    assert list(report.gpus) == gpus
    for flag in ("apple_silicon", "metal", "rocm", "directml"):
        assert getattr(report, flag) is flags.get(flag, False), flag


@pytest.mark.parametrize("name", MACHINES)
def test_auto_ranks_the_runtimes_of_recorded_machine(name: str, tmp_path: Path) -> None:
    report = recorded_report(name, tmp_path)
    ranking = rank_backends(
        report, "gemma-3-270m", measured=False, candidates=[as_installed(c) for c in BUILT_INS]
    )
    unusable = UNUSABLE.get(name, {})
    assert [r.name for r in ranking] == ORDER[name]
    for entry in ranking:
        assert entry.usable is (entry.name not in unusable), entry
        assert entry.reason
        if entry.name in unusable:
            assert unusable[entry.name] in entry.reason


def test_a_report_read_from_recorded_facts_round_trips_through_json(tmp_path: Path) -> None:
    report = recorded_report("linux-x86_64-ryzen-7950x-radeon-7900xtx", tmp_path)
    assert HardwareReport.from_json(report.to_json()) == report


@pytest.mark.parametrize(
    ("machine", "arch"),
    [("AMD64", "x86_64"), ("x86_64", "x86_64"), ("ARM64", "arm64"), ("aarch64", "arm64")],
)
def test_platform_machine_of_every_os_is_spelled_one_way(machine: str, arch: str) -> None:
    assert normalise_arch(machine) == arch


# -- single tool outputs (hardware/tool-outputs) ---------------------------------------

TOOL_OUTPUTS = Path(__file__).parent / "hardware" / "tool-outputs"


def tool_output(name: str) -> str:
    return (TOOL_OUTPUTS / name).read_text("utf-8")


def test_nvidia_smi_lists_every_gpu_with_memory_in_bytes() -> None:
    gpus = nvidia_smi_gpus(tool_output("nvidia-smi-2x-rtx4090.csv"))
    assert (
        gpus == [GPU("nvidia", "NVIDIA GeForce RTX 4090", "cuda", 24564 * 2**20, "560.35.03")] * 2
    )


def test_nvidia_smi_unknown_memory_of_a_unified_memory_gpu_is_none() -> None:
    assert nvidia_smi_gpus(tool_output("nvidia-smi-dgx-spark-gb10.csv")) == [
        GPU("nvidia", "NVIDIA GB10", "cuda", None, "580.95.05")
    ]


def test_proc_driver_version_of_the_proprietary_module_names_the_driver() -> None:
    gpus = nvidia_proc_gpus(tool_output("proc-driver-nvidia-version-proprietary.txt"), ["Model: X"])
    assert gpus == [GPU("nvidia", "X", "cuda", None, "550.54.15")]


def test_arm_cpuinfo_without_core_ids_counts_no_physical_cores() -> None:
    text = (RECORDED / "linux-arm64-graviton3-vm" / "proc" / "cpuinfo").read_text("utf-8")
    assert cpuinfo_physical_cores(text) == 0
    assert parse_cpuinfo(text)["CPU part"] == "0xd40"


def test_meminfo_without_mem_available_leaves_it_unknown() -> None:
    # Linux before 3.14 has no MemAvailable line.
    assert parse_meminfo("MemTotal:        2048000 kB\nMemFree:          512000 kB\n") == (
        2048000 * 1024,
        None,
    )


@pytest.mark.parametrize(
    ("llama_lib", "torch_version", "onnx_dist", "expected"),
    [
        (
            "llama-cpp-python-lib-macos-metal.txt",
            None,
            None,
            {"llamacpp": "metal"},
        ),
        (
            "llama-cpp-python-lib-linux-cuda.txt",
            "torch-version-cu128.txt",
            "onnxruntime-genai-cuda",
            {"llamacpp": "cuda", "onnx": "cuda", "transformers": "cuda"},
        ),
        (
            "llama-cpp-python-lib-windows-vulkan.txt",
            "torch-version-rocm6.4.txt",
            "onnxruntime-genai-directml",
            {"llamacpp": "vulkan", "onnx": "directml", "transformers": "hip"},
        ),
        (None, None, "onnxruntime-genai", {"onnx": "cpu"}),
    ],
)
def test_runtime_builds_are_read_from_the_files_of_recorded_wheels(
    llama_lib: str | None,
    torch_version: str | None,
    onnx_dist: str | None,
    expected: dict[str, str],
    tmp_path: Path,
) -> None:
    if llama_lib:
        lib = tmp_path / "llama_cpp" / "lib"
        lib.mkdir(parents=True)
        for name in tool_output(llama_lib).split():
            (lib / name).touch()
    if torch_version:
        (tmp_path / "torch").mkdir()
        (tmp_path / "torch" / "version.py").write_text(tool_output(torch_version), "utf-8")
    if onnx_dist:
        (tmp_path / "onnxruntime_genai").mkdir()

    def package_dir(module: str) -> Path | None:
        folder = tmp_path / module
        return folder if folder.is_dir() else None

    assert runtime_builds(package_dir, lambda dist: dist == onnx_dist) == expected
