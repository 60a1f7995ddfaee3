"""Hardware facts, read without importing any runtime.

:func:`probe` returns a :class:`HardwareReport`: OS, CPU and its vector extensions,
cores, memory and accelerators. It reads ``/proc``, ``/sys``, ``sysctl`` and, only when
an NVIDIA driver is present, ``nvidia-smi`` (the readers are in :mod:`slmkit.hostfacts`,
which tests feed with recorded machines); it never imports torch, openvino or any
other runtime unless asked (``deep=True``). A report round-trips through JSON
(:meth:`HardwareReport.to_dict` / :meth:`HardwareReport.from_dict`), so recorded
reports of other machines can be fed to the ranking in :mod:`slmkit.ranking`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from . import hostfacts
from .hostfacts import GPU

__all__ = [
    "GPU",
    "HardwareReport",
    "has_distribution",
    "implied_openvino_devices",
    "physical_cores",
    "probe",
    "read_report",
    "runtime_builds",
]


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
    return read_report(hostfacts.this_machine(), deep=deep)


def read_report(host: hostfacts.Host, *, deep: bool = False) -> HardwareReport:
    """The report of ``host``: this machine, or one recorded elsewhere (tests). The
    runtime builds and OpenVINO devices are those of this Python environment."""
    notes: list[str] = []
    total, available = hostfacts.memory(host)
    gpus = hostfacts.accelerators(host)
    ov_devices = _openvino_devices(gpus, deep, notes)
    return HardwareReport(
        os=host.system.lower() or sys.platform,
        os_release=host.release,
        arch=hostfacts.normalise_arch(host.machine),
        cpu_model=hostfacts.cpu_model(host),
        vector_extensions=hostfacts.vector_extensions(host),
        physical_cores=hostfacts.physical_cores(host),
        logical_cores=host.cpu_count or 1,
        memory_total_bytes=total,
        memory_available_bytes=available,
        gpus=tuple(gpus),
        apple_silicon=hostfacts.apple_silicon(host),
        metal=host.system == "Darwin",
        rocm=(host.root / "dev/kfd").exists() and any(g.api == "rocm" for g in gpus),
        directml=hostfacts.directml_present(host),
        openvino_devices=ov_devices,
        builds=runtime_builds(),
        notes=tuple(notes),
    )


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
    return implied_openvino_devices(gpus)


def implied_openvino_devices(gpus: list[GPU] | tuple[GPU, ...]) -> tuple[str, ...]:
    """The OpenVINO devices that the accelerators found imply, without asking openvino."""
    devices = ["CPU"]
    if any(g.vendor == "intel" and g.api == "xpu" for g in gpus):
        devices.append("GPU")
    if any(g.api == "npu" for g in gpus):
        devices.append("NPU")
    return tuple(devices)


def runtime_builds(
    folder_of: Callable[[str], Path | None] | None = None,
    installed: Callable[[str], bool] | None = None,
) -> dict[str, str]:
    """The accelerator each installed local runtime supports, keyed by backend name. Each
    backend reads its own runtime's files (``Backend.runtime_build``); nothing is imported.
    ``folder_of`` (module -> folder) and ``installed`` (distribution -> bool) default to
    this environment; tests pass the layout of a wheel installed elsewhere."""
    from . import registry
    from .errors import BackendUnavailable

    where = folder_of or package_dir
    has = installed or has_distribution
    builds = {}
    for name in registry.backend_names():
        try:
            build = registry.get_backend(name).runtime_build(where, has)
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
    return hostfacts.physical_cores(hostfacts.this_machine())
