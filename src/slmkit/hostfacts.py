"""The probe's readers: what each OS tells about its CPU, memory and accelerators.

Every reader takes a :class:`Host`, the probe's only contact with a machine: files under
``root`` (``/proc``, ``/sys``, ``/dev``), ``sysctl`` on macOS, ``nvidia-smi``, and the
two kernel32 calls on Windows. :func:`this_machine` is the live host; tests build one
from recorded outputs of other machines, so the macOS and Windows branches run (and
break) on Linux too. The text parsers are plain functions of strings.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GPU",
    "Host",
    "cpu_model",
    "cpuinfo_physical_cores",
    "memory",
    "normalise_arch",
    "nvidia_proc_gpus",
    "nvidia_smi_gpus",
    "parse_cpuinfo",
    "parse_meminfo",
    "physical_cores",
    "read_text",
    "sysfs_gpus",
    "this_machine",
    "vector_extensions",
]

_VECTOR_FLAGS = {
    # /proc/cpuinfo flag -> the name slmkit reports
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx_vnni": "AVX-VNNI",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512-VNNI",
    "avx512_bf16": "AVX-512-BF16",
    "avx512_fp16": "AVX-512-FP16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "asimd": "NEON",
    "neon": "NEON",
    "asimddp": "NEON-DOTPROD",
    "i8mm": "I8MM",
    "sve": "SVE",
    "sve2": "SVE2",
}
_PCI_VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
#: IsProcessorFeaturePresent codes: PF_AVX_INSTRUCTIONS_AVAILABLE = 39, AVX2 40, AVX512F 41.
WINDOWS_FEATURES = {"avx": 39, "avx2": 40, "avx512f": 41}
NVIDIA_QUERY = ("--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits")


@dataclass(frozen=True)
class GPU:
    """One accelerator. ``api`` says how runtimes reach it: cuda, rocm, metal, xpu, npu."""

    vendor: str
    name: str
    api: str
    memory_bytes: int | None = None
    driver: str = ""
    integrated: bool = False


@dataclass(frozen=True)
class Host:
    """Where facts come from. ``nvidia_smi`` returns the CSV of :data:`NVIDIA_QUERY`, ""
    when it failed, None when there is no nvidia-smi."""

    system: str
    machine: str
    release: str
    processor: Callable[[], str]
    cpu_count: int | None
    sysctl: Callable[[str], str]
    nvidia_smi: Callable[[], str | None]
    windows_feature: Callable[[int], bool]
    windows_memory: Callable[[], tuple[int | None, int | None]]
    root: Path = Path("/")
    environ: Mapping[str, str] = field(default_factory=dict)

    def read(self, path: str) -> str:
        """A file's text under ``root`` ("" when absent)."""
        return read_text(self.root / path)


def this_machine() -> Host:
    return Host(
        system=platform.system(),
        machine=platform.machine(),
        release=platform.release(),
        processor=platform.processor,
        cpu_count=os.cpu_count(),
        sysctl=_sysctl,
        nvidia_smi=_run_nvidia_smi,
        windows_feature=_windows_feature,
        windows_memory=_windows_memory,
        environ=os.environ,
    )


def normalise_arch(machine: str) -> str:
    """platform.machine() spelled one way: x86_64 (AMD64 on Windows) or arm64 (aarch64)."""
    machine = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def read_text(path: str | Path) -> str:
    """A file's text, stripped; "" when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _sysctl(name: str) -> str:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _run_nvidia_smi() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, *NVIDIA_QUERY], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout


def _windows_feature(code: int) -> bool:
    try:
        import ctypes

        present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        return False
    return bool(present(code))


def _windows_memory() -> tuple[int | None, int | None]:
    try:
        import ctypes

        class MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
        return int(status.ullTotalPhys), int(status.ullAvailPhys)
    except (ImportError, AttributeError, OSError):
        return None, None


# -- /proc text ------------------------------------------------------------------------


def parse_cpuinfo(text: str) -> dict[str, str]:
    """/proc/cpuinfo's fields, the first processor's value where processors repeat one;
    machine-wide fields after the last processor (ARM's ``Hardware``) are kept too."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpuinfo_physical_cores(text: str) -> int:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo; 0 where it lists none (ARM)."""
    pairs = set()
    physical = core = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not key and core:
            pairs.add((physical, core))
            physical = core = ""
    if core:
        pairs.add((physical, core))
    return len(pairs)


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    """MemTotal and MemAvailable of /proc/meminfo, in bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    return values.get("MemTotal"), values.get("MemAvailable")


# -- per OS ------------------------------------------------------------------------------


def cpu_model(host: Host) -> str:
    if host.system == "Linux":
        info = parse_cpuinfo(host.read("proc/cpuinfo"))
        return info.get("model name") or info.get("Hardware") or info.get("cpu model") or ""
    if host.system == "Darwin":
        return host.sysctl("machdep.cpu.brand_string")
    return host.processor()


def vector_extensions(host: Host) -> tuple[str, ...]:
    arch = normalise_arch(host.machine)
    flags: set[str] = set()
    if host.system == "Linux":
        info = parse_cpuinfo(host.read("proc/cpuinfo"))
        flags = set((info.get("flags") or info.get("Features") or "").split())
    elif host.system == "Darwin":
        if arch == "arm64":
            flags = {"asimd", "asimddp"}
            if host.sysctl("hw.optional.arm.FEAT_I8MM") == "1":
                flags.add("i8mm")
        else:
            text = (
                host.sysctl("machdep.cpu.features")
                + " "
                + host.sysctl("machdep.cpu.leaf7_features")
            )
            flags = {f.lower().replace(".", "_") for f in text.split()}
            if "avx1_0" in flags:  # macOS spells AVX "AVX1.0"
                flags.add("avx")
    elif host.system == "Windows":
        flags = {name for name, code in WINDOWS_FEATURES.items() if host.windows_feature(code)}
    if arch == "arm64":
        flags.add("asimd")  # NEON is mandatory on ARMv8-A
    found = {name for flag, name in _VECTOR_FLAGS.items() if flag in flags}
    return tuple(sorted(found))


def memory(host: Host) -> tuple[int | None, int | None]:
    """(total, available) bytes; macOS tells no available figure through sysctl."""
    if host.system == "Linux":
        return parse_meminfo(host.read("proc/meminfo"))
    if host.system == "Darwin":
        total = host.sysctl("hw.memsize")
        return (int(total) if total.isdigit() else None), None
    if host.system == "Windows":
        return host.windows_memory()
    return None, None


def physical_cores(host: Host) -> int:
    """Physical CPU cores (not hyper-threads): the best default thread count for decoding."""
    if host.system == "Linux":
        counted = cpuinfo_physical_cores(host.read("proc/cpuinfo"))
        if counted:
            return counted
    elif host.system == "Darwin":
        value = host.sysctl("hw.physicalcpu")
        if value.isdigit():
            return max(1, int(value))
    return max(1, host.cpu_count or 1)


def apple_silicon(host: Host) -> bool:
    return host.system == "Darwin" and normalise_arch(host.machine) == "arm64"


def directml_present(host: Host) -> bool:
    root = host.environ.get("SYSTEMROOT", r"C:\Windows")
    return host.system == "Windows" and Path(root, "System32", "DirectML.dll").exists()


# -- accelerators ------------------------------------------------------------------------


def accelerators(host: Host) -> list[GPU]:
    gpus = _nvidia_gpus(host) + sysfs_gpus(host)
    if apple_silicon(host):
        name = host.sysctl("machdep.cpu.brand_string") or "Apple GPU"
        gpus.append(GPU("apple", name, "metal"))
    return gpus


def nvidia_smi_gpus(csv: str) -> list[GPU]:
    """GPUs from ``nvidia-smi`` with :data:`NVIDIA_QUERY` (MiB; "[N/A]" where unknown)."""
    gpus = []
    for line in csv.splitlines():
        name, memory, driver = (part.strip() for part in [*line.split(","), "", ""][:3])
        mib = int(memory) if memory.isdigit() else None
        gpus.append(GPU("nvidia", name, "cuda", mib * 2**20 if mib else None, driver))
    return gpus


def nvidia_proc_gpus(version: str, informations: list[str]) -> list[GPU]:
    """GPUs from /proc/driver/nvidia: ``version`` and each ``gpus/*/information`` text."""
    found = re.search(r"Kernel Module.*?\b(\d+\.\d+(?:\.\d+)*)\b", version)
    driver = found.group(1) if found else ""
    gpus = []
    for text in informations:
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        gpus.append(GPU("nvidia", fields.get("Model", "NVIDIA GPU").strip(), "cuda", None, driver))
    return gpus


def _nvidia_gpus(host: Host) -> list[GPU]:
    """NVIDIA GPUs from nvidia-smi when the driver is present; /proc as a fallback."""
    proc = host.root / "proc/driver/nvidia"
    csv = host.nvidia_smi()
    if not proc.exists() and csv is None:
        return []
    gpus = nvidia_smi_gpus(csv or "")
    if gpus:
        return gpus
    informations = [read_text(p) for p in sorted((proc / "gpus").glob("*/information"))]
    return nvidia_proc_gpus(read_text(proc / "version"), informations)


def sysfs_gpus(host: Host) -> list[GPU]:
    """AMD (ROCm) and Intel GPUs from /sys/class/drm, Intel NPUs (Core Ultra) from
    /sys/class/accel; NVIDIA is read by nvidia-smi."""
    if host.system != "Linux":
        return []
    gpus = []
    for card in sorted((host.root / "sys/class/drm").glob("card[0-9]*")):
        if "-" in card.name:  # connectors such as card0-HDMI-A-1
            continue
        device = card / "device"
        vendor = _PCI_VENDORS.get(read_text(device / "vendor"))
        if vendor not in ("amd", "intel"):
            continue
        vram = read_text(device / "mem_info_vram_total")
        memory = int(vram) if vram.isdigit() else None
        product = read_text(device / "product_name")
        name = product or f"{vendor.upper()} GPU {read_text(device / 'device')}"
        api = "rocm" if vendor == "amd" else "xpu"
        integrated = memory is None or memory < 2**30
        gpus.append(GPU(vendor, name, api, memory, _driver_name(device), integrated))
    for accel in sorted((host.root / "sys/class/accel").glob("accel[0-9]*")):
        device = accel / "device"
        if _PCI_VENDORS.get(read_text(device / "vendor")) == "intel":
            npu = GPU("intel", "Intel NPU", "npu", None, _driver_name(device), integrated=True)
            gpus.append(npu)
    return gpus


def _driver_name(device: Path) -> str:
    """The kernel driver bound to a sysfs device (i915, xe, amdgpu, intel_vpu)."""
    link = device / "driver"
    return Path(os.path.realpath(link)).name if link.exists() else ""
