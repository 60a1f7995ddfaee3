"""Hardware facts, read without importing any runtime.

:func:`probe` returns a :class:`HardwareReport`: OS, CPU and its vector extensions,
cores, memory and accelerators. It reads ``/proc``, ``/sys``, ``sysctl`` and, only when
an NVIDIA driver is present, ``nvidia-smi``; it never imports torch, openvino or any
other runtime unless asked (``deep=True``). A report round-trips through JSON
(:meth:`HardwareReport.to_dict` / :meth:`HardwareReport.from_dict`), so recorded
reports of other machines can be fed to the ranking in :mod:`slmkit.ranking`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import types
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "GPU",
    "HardwareReport",
    "has_distribution",
    "package_dir",
    "physical_cores",
    "probe",
    "read_text",
    "runtime_builds",
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
class HardwareReport:
    """What :func:`probe` found. Memory in bytes; ``None`` where the OS did not say."""

    os: str
    os_release: str
    arch: str
    cpu_model: str
    vector_extensions: tuple[str, ...]
    physical_cores: int
    logical_cores: int
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    gpus: tuple[GPU, ...] = ()
    apple_silicon: bool = False
    metal: bool = False
    rocm: bool = False
    directml: bool = False
    #: OpenVINO device names (CPU, GPU, NPU), from sysfs, or from openvino with deep=True.
    openvino_devices: tuple[str, ...] = ()
    #: Which accelerator each installed local runtime was built for ("cpu", "cuda", "hip",
    #: "metal", "directml"), keyed by backend name; each backend reads its own files.
    builds: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def nvidia(self) -> tuple[GPU, ...]:
        return tuple(g for g in self.gpus if g.api == "cuda")

    @property
    def intel_gpu(self) -> bool:
        return any(g.vendor == "intel" and g.api == "xpu" for g in self.gpus)

    @property
    def intel_npu(self) -> bool:
        return any(g.api == "npu" for g in self.gpus)

    def has(self, extension: str) -> bool:
        return extension.upper() in self.vector_extensions

    def fingerprint(self) -> str:
        """A stable id of the machine's compute (not its load): keys stored measurements."""
        parts = [
            self.os,
            self.arch,
            self.cpu_model,
            str(self.physical_cores),
            str(self.logical_cores),
            str(round((self.memory_total_bytes or 0) / 2**30)),
            *sorted(f"{g.vendor}:{g.name}:{g.api}" for g in self.gpus),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples), so a dumped and loaded copy compares equal."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareReport:
        """Rebuild a report from :meth:`to_dict` output (or recorded JSON)."""
        values = dict(data)
        values["gpus"] = tuple(GPU(**g) for g in values.get("gpus", ()))
        values["builds"] = dict(values.get("builds", {}))
        for name in ("vector_extensions", "openvino_devices", "notes"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> HardwareReport:
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def probe(*, refresh: bool = False, deep: bool = False) -> HardwareReport:
    """Read this machine. Cached; ``refresh`` re-reads (memory changes), ``deep`` also asks
    OpenVINO which devices it sees (imports openvino, ~1 s)."""
    if refresh:
        _probe.cache_clear()
    return _probe(deep)


@lru_cache(maxsize=2)
def _probe(deep: bool) -> HardwareReport:
    system = platform.system()
    arch = _arch()
    notes: list[str] = []
    total, available = _memory(system)
    gpus = _nvidia_gpus() + _drm_gpus(system) + _intel_npus(system)
    apple = system == "Darwin" and arch == "arm64"
    if apple:
        gpus.append(GPU("apple", _sysctl("machdep.cpu.brand_string") or "Apple GPU", "metal"))
    ov_devices = _openvino_devices(gpus, deep, notes)
    return HardwareReport(
        os=system.lower() or sys.platform,
        os_release=platform.release(),
        arch=arch,
        cpu_model=_cpu_model(system),
        vector_extensions=_vector_extensions(system, arch),
        physical_cores=physical_cores(),
        logical_cores=os.cpu_count() or 1,
        memory_total_bytes=total,
        memory_available_bytes=available,
        gpus=tuple(gpus),
        apple_silicon=apple,
        metal=system == "Darwin",
        rocm=Path("/dev/kfd").exists() and any(g.api == "rocm" for g in gpus),
        directml=system == "Windows" and _directml_present(),
        openvino_devices=ov_devices,
        builds=runtime_builds(),
        notes=tuple(notes),
    )


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def read_text(path: str | Path) -> str:
    """A small text file's content, stripped; "" when it cannot be read."""
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


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux)."""
    fields: dict[str, str] = {}
    for line in read_text("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if not key and fields:
            break
        fields.setdefault(key, value.strip())
    return fields


def _cpu_model(system: str) -> str:
    if system == "Linux":
        info = _cpuinfo()
        return info.get("model name") or info.get("Hardware") or info.get("cpu model") or ""
    if system == "Darwin":
        return _sysctl("machdep.cpu.brand_string")
    return platform.processor()


def _vector_extensions(system: str, arch: str) -> tuple[str, ...]:
    flags: set[str] = set()
    if system == "Linux":
        info = _cpuinfo()
        flags = set((info.get("flags") or info.get("Features") or "").split())
    elif system == "Darwin":
        if arch == "arm64":
            flags = {"asimd", "asimddp"}
            if _sysctl("hw.optional.arm.FEAT_I8MM") == "1":
                flags.add("i8mm")
        else:
            text = _sysctl("machdep.cpu.features") + " " + _sysctl("machdep.cpu.leaf7_features")
            flags = {f.lower().replace(".", "_") for f in text.split()}
    elif system == "Windows":
        flags = _windows_cpu_flags()
    if arch == "arm64":
        flags.add("asimd")  # NEON is mandatory on ARMv8-A
    found = {name for flag, name in _VECTOR_FLAGS.items() if flag in flags}
    return tuple(sorted(found))


def _windows_cpu_flags() -> set[str]:
    try:
        import ctypes

        present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        return set()
    # PF_AVX_INSTRUCTIONS_AVAILABLE = 39, PF_AVX2 = 40, PF_AVX512F = 41
    codes = {"avx": 39, "avx2": 40, "avx512f": 41}
    return {name for name, code in codes.items() if present(code)}


def _memory(system: str) -> tuple[int | None, int | None]:
    if system == "Linux":
        values: dict[str, int] = {}
        for line in read_text("/proc/meminfo").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * 1024
        return values.get("MemTotal"), values.get("MemAvailable")
    if system == "Darwin":
        total = _sysctl("hw.memsize")
        return (int(total) if total.isdigit() else None), None
    if system == "Windows":
        return _windows_memory()
    return None, None


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


def _nvidia_gpus() -> list[GPU]:
    """NVIDIA GPUs from nvidia-smi when the driver is present; /proc as a fallback."""
    proc = Path("/proc/driver/nvidia")
    smi = shutil.which("nvidia-smi")
    if not proc.exists() and smi is None:
        return []
    if smi is not None:
        query = "--query-gpu=name,memory.total,driver_version"
        try:
            out = subprocess.run(
                [smi, query, "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=3,
            )
            gpus = []
            for line in out.stdout.splitlines():
                name, memory, driver = (part.strip() for part in [*line.split(","), "", ""][:3])
                mib = int(memory) if memory.isdigit() else None
                gpus.append(GPU("nvidia", name, "cuda", mib * 2**20 if mib else None, driver))
            if gpus:
                return gpus
        except (OSError, subprocess.SubprocessError):
            pass
    version = read_text(proc / "version").split("Kernel Module", 1)[-1].split()
    driver = version[0] if version else ""
    gpus = []
    for info in sorted((proc / "gpus").glob("*/information")):
        fields = dict(line.split(":", 1) for line in read_text(info).splitlines() if ":" in line)
        gpus.append(GPU("nvidia", fields.get("Model", "NVIDIA GPU").strip(), "cuda", None, driver))
    return gpus


def _drm_gpus(system: str) -> list[GPU]:
    """AMD (ROCm) and Intel GPUs from /sys/class/drm; NVIDIA is read by _nvidia_gpus."""
    if system != "Linux":
        return []
    gpus = []
    for card in sorted(Path("/sys/class/drm").glob("card[0-9]*")):
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
        driver = _driver_name(device)
        api = "rocm" if vendor == "amd" else "xpu"
        integrated = memory is None or memory < 2**30
        gpus.append(GPU(vendor, name, api, memory, driver, integrated))
    return gpus


def _intel_npus(system: str) -> list[GPU]:
    """Intel NPUs (Core Ultra) appear as /sys/class/accel/accelN with the intel_vpu driver."""
    if system != "Linux":
        return []
    npus = []
    for accel in sorted(Path("/sys/class/accel").glob("accel[0-9]*")):
        device = accel / "device"
        if _PCI_VENDORS.get(read_text(device / "vendor")) != "intel":
            continue
        driver = _driver_name(device)
        npus.append(GPU("intel", "Intel NPU", "npu", None, driver, integrated=True))
    return npus


def _driver_name(device: Path) -> str:
    """The kernel driver bound to a sysfs device (i915, xe, amdgpu, intel_vpu)."""
    link = device / "driver"
    return Path(os.path.realpath(link)).name if link.exists() else ""


def _directml_present() -> bool:
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return Path(root, "System32", "DirectML.dll").exists()


def _openvino_devices(gpus: list[GPU], deep: bool, notes: list[str]) -> tuple[str, ...]:
    """Devices OpenVINO could use: from sysfs (cheap), or from openvino itself (deep)."""
    if importlib.util.find_spec("openvino") is None:
        return ()
    if deep:
        try:
            import openvino

            return tuple(openvino.Core().available_devices)
        except Exception as exc:  # a broken install must not break probe()
            notes.append(f"openvino could not list devices: {type(exc).__name__}: {exc}")
    devices = ["CPU"]
    if any(g.vendor == "intel" and g.api == "xpu" for g in gpus):
        devices.append("GPU")
    if any(g.api == "npu" for g in gpus):
        devices.append("NPU")
    return tuple(devices)


def runtime_builds() -> dict[str, str]:
    """The accelerator each installed local runtime supports, keyed by backend name. Each
    backend reads its own runtime's files (``Backend.runtime_build``); nothing is imported."""
    from . import registry
    from .errors import BackendUnavailable

    builds = {}
    for name in registry.backend_names():
        try:
            build = registry.get_backend(name).runtime_build()
        except BackendUnavailable:
            continue
        if build is not None:
            builds[name] = build
    return builds


def package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def has_distribution(name: str) -> bool:
    """Is the pip distribution ``name`` installed? Reads metadata, imports nothing."""
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical CPU cores (not hyper-threads): the best default thread count for decoding."""
    system = platform.system()
    if system == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                pairs = set()
                physical = core = ""
                for line in handle:
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
            if pairs:
                return len(pairs)
        except OSError:
            pass
    elif system == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=2
            )
            return max(1, int(out.stdout.strip()))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return max(1, os.cpu_count() or 1)


class _CallableModule(types.ModuleType):
    """``slmkit.probe()`` must work even after ``slmkit.probe`` the module was imported
    (importing a submodule sets the package attribute of the same name to the module)."""

    def __call__(self, *, refresh: bool = False, deep: bool = False) -> HardwareReport:
        return probe(refresh=refresh, deep=deep)


sys.modules[__name__].__class__ = _CallableModule
