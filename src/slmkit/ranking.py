"""Which local backend should ``backend="auto"`` use on this machine, and why.

:func:`rank_backends` orders the installed local backends for a model on a
:class:`~slmkit.probe.HardwareReport`. A measurement stored by ``slmkit bench
--autotune`` for this machine, model and backend versions wins over the rule table;
backends without one follow by rule score. Every entry carries the reason for its place.

The rule table (scores 0-100, higher first) encodes decode speed: on an x86 CPU the
measured order is ONNX Runtime GenAI > OpenVINO > llama.cpp >> transformers > MLX
(docs/benchmarks.md, RUNTIME-NOTES); accelerators move the runtime that can use them
to the top, provided the installed build supports them (read from files, no import).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paths import cache_dir

if TYPE_CHECKING:
    from .backends.base import Backend, ModelRef
    from .probe import HardwareReport

__all__ = [
    "Ranked",
    "backend_versions",
    "load_measurement",
    "rank_backends",
    "store_measurement",
]

#: Rough resident memory per byte of the Q4 GGUF, by artifact format (measured here).
_MEMORY_FACTOR = {"gguf": 1.6, "onnx": 2.2, "openvino": 2.6, "hf": 7.0, "mlx": 7.5}


@dataclass(frozen=True)
class Ranked:
    """One backend's place. ``source`` is "measured" (autotune) or "rules"."""

    name: str
    usable: bool
    score: float
    reason: str
    source: str = "rules"


def rank_backends(
    report: HardwareReport | None = None,
    model: str | ModelRef | None = None,
    *,
    measured: bool = True,
    candidates: Sequence[type[Backend]] | None = None,
) -> list[Ranked]:
    """Local backends, best first: usable ones by stored measurement, then by rule.

    ``candidates`` defaults to every registered backend; ``measured=False`` ignores
    stored measurements (the pure rule table).
    """
    from . import registry
    from .errors import BackendUnavailable
    from .probe import probe

    report = report or probe()
    ref = _as_ref(model)
    stored = load_measurement(report, ref.name) if measured else None
    entries = []
    if candidates is None:
        classes: list[type[Backend]] = []
        for name in registry.backend_names():
            try:
                classes.append(registry.get_backend(name))
            except BackendUnavailable as exc:
                entries.append(Ranked(name, False, 0.0, str(exc)))
        candidates = classes
    for cls in candidates:
        if cls.kind == "local":
            entries.append(_rank_one(cls, report, ref, stored))
    return sorted(entries, key=lambda r: (r.usable, r.source == "measured", r.score), reverse=True)


def _as_ref(model: str | ModelRef | None) -> ModelRef:
    from .catalog import ModelRef, model_ref
    from .catalog.models import DEFAULT_MODEL

    if isinstance(model, ModelRef):
        return model
    return model_ref(model or DEFAULT_MODEL)


def _rank_one(
    cls: type[Backend], report: HardwareReport, ref: ModelRef, stored: dict[str, Any] | None
) -> Ranked:
    availability = cls.check(report)
    if not availability.usable:
        return Ranked(cls.name, False, 0.0, availability.reason or "not usable here")
    too_big = _memory_shortfall(cls, report, ref)
    if too_big:
        return Ranked(cls.name, False, 0.0, too_big)
    result = _measured(cls, stored)
    if result is not None:
        when = str(stored.get("created", ""))[:10] if stored else ""
        reason = (
            f"measured {result['decode_tok_s']:.1f} tok/s decode on this machine "
            f"(slmkit bench --autotune, {when})"
        )
        return Ranked(cls.name, True, float(result["decode_tok_s"]), reason, "measured")
    score, reason = rule_score(cls.name, report)
    return Ranked(cls.name, True, score, reason)


def rule_score(name: str, report: HardwareReport) -> tuple[float, str]:
    """The rule table: a score and the reason for it."""
    rule = _RULES.get(name)
    if rule is None:
        return 10.0, "third-party backend: no rule for it, ranked after the known ones"
    return rule(report)


def _cpu(name: str, report: HardwareReport) -> tuple[float, str]:
    """CPU-only order. x86 figures measured here (decode tok/s, Gemma 3 270M / Qwen 0.5B)."""
    arm = report.arch == "arm64"
    table = {
        "onnx": (70, "CPU: ONNX Runtime GenAI int4 decodes fastest on CPU (~150 / ~106 tok/s)"),
        "openvino": (
            (40, "CPU: OpenVINO's CPU plugin is tuned for x86 more than ARM")
            if arm
            else (65, "CPU: OpenVINO int4 is second on x86 CPU (~100 / ~60 tok/s)")
        ),
        "llamacpp": (
            (75, "CPU: llama.cpp's NEON kernels lead on ARM CPUs")
            if arm
            else (60, "CPU: llama.cpp runs the GGUF as shipped (~88 / ~61 tok/s), no conversion")
        ),
        "transformers": (20, "CPU: transformers fp32 is ~7x slower than the int4 runtimes"),
        "mlx": (5, "CPU: MLX without Metal uses a reference BLAS on one core (~5 tok/s)"),
    }
    return table[name]


def _onnx(report: HardwareReport) -> tuple[float, str]:
    build = report.builds.get("onnx")
    if report.nvidia and build == "cuda":
        return 95, f"NVIDIA {report.nvidia[0].name}: ONNX Runtime GenAI CUDA build"
    if report.directml and build == "directml":
        return 90, "Windows GPU: ONNX Runtime GenAI DirectML build"
    score, reason = _cpu("onnx", report)
    if report.nvidia:
        reason += "; the GPU is unused: pip install onnxruntime-genai-cuda"
    return score, reason


def _llamacpp(report: HardwareReport) -> tuple[float, str]:
    gpu = report.builds.get("llamacpp")
    if report.nvidia and gpu == "cuda":
        return 90, f"NVIDIA {report.nvidia[0].name}: llama.cpp CUDA build, layers offloaded"
    if report.rocm and gpu == "hip":
        return 90, "AMD GPU: llama.cpp ROCm/HIP build, layers offloaded"
    if report.apple_silicon:
        if gpu == "metal":
            return 90, "Apple silicon: llama.cpp Metal build, second to MLX"
        return 55, "Apple silicon: this llama.cpp build has no Metal; reinstall llama-cpp-python"
    score, reason = _cpu("llamacpp", report)
    if report.nvidia or report.rocm:
        reason += "; the GPU is unused: install a CUDA/ROCm build of llama-cpp-python"
    return score, reason


def _transformers(report: HardwareReport) -> tuple[float, str]:
    torch_build = report.builds.get("torch")
    if report.nvidia and torch_build == "cuda":
        return 85, f"NVIDIA {report.nvidia[0].name}: torch CUDA build"
    if report.rocm and torch_build == "hip":
        return 85, "AMD GPU: torch ROCm build"
    if report.apple_silicon:
        return 30, "Apple silicon: torch on MPS, behind MLX and llama.cpp"
    score, reason = _cpu("transformers", report)
    if report.nvidia:
        reason += "; the installed torch is a CPU build"
    return score, reason


def _openvino(report: HardwareReport) -> tuple[float, str]:
    if "GPU" in report.openvino_devices:
        return 92, "Intel GPU: OpenVINO runs on it (device GPU)"
    if "NPU" in report.openvino_devices:
        return 88, "Intel NPU: OpenVINO runs on it (device NPU)"
    if report.apple_silicon:
        return 15, "Apple silicon: OpenVINO runs on the CPU only"
    return _cpu("openvino", report)


def _mlx(report: HardwareReport) -> tuple[float, str]:
    if report.apple_silicon:
        return 100, "Apple silicon: MLX on Metal is the leading runtime"
    return _cpu("mlx", report)


_RULES = {
    "onnx": _onnx,
    "llamacpp": _llamacpp,
    "transformers": _transformers,
    "openvino": _openvino,
    "mlx": _mlx,
}


def _memory_shortfall(cls: type[Backend], report: HardwareReport, ref: ModelRef) -> str:
    """A reason when the model clearly does not fit in available memory, else ""."""
    available = report.memory_available_bytes
    size = ref.spec.packaged.size if ref.spec is not None and ref.spec.packaged else None
    if available is None or size is None or report.gpus:
        return ""
    need = size * _MEMORY_FACTOR.get(cls.artifact_format or "", 1.0)
    if need <= available:
        return ""
    return (
        f"needs ~{need / 2**30:.1f} GiB for {ref.name} in {cls.artifact_format} format, "
        f"{available / 2**30:.1f} GiB available"
    )


# -- measurements stored by `slmkit bench --autotune` ----------------------------------


def backend_versions(cls: type[Backend]) -> dict[str, str]:
    """Versions of the distributions a backend runs on: a stored measurement's key."""
    from . import __version__

    versions = {"slmkit": __version__}
    for _, dist in cls.packages:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


def _measurement_path(report: HardwareReport, model: str) -> Path:
    slug = re.sub(r"[^a-zA-Z0-9_.-]+", "_", model.strip().lower())[:80] or "model"
    return cache_dir("autotune", report.fingerprint(), f"{slug}.json")


def store_measurement(report: HardwareReport, model: str, results: list[dict[str, Any]]) -> Path:
    """Store bench results for (machine, model); each result names its backend, the
    backend's versions and ``decode_tok_s``. Written atomically."""
    path = _measurement_path(report, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "machine": report.fingerprint(),
        "hardware": report.to_dict(),
        "results": sorted(results, key=lambda r: -float(r["decode_tok_s"])),
    }
    staging = path.with_suffix(".json.partial")
    staging.write_text(json.dumps(data, indent=2), encoding="utf-8")
    staging.replace(path)
    return path


def load_measurement(report: HardwareReport, model: str) -> dict[str, Any] | None:
    """The stored autotune result for (machine, model), or None."""
    path = _measurement_path(report, model)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("results"), list) else None


def _measured(cls: type[Backend], stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """This backend's stored result, if its versions still match what is installed."""
    if not stored:
        return None
    versions = backend_versions(cls)
    for result in stored["results"]:
        same = result.get("backend") == cls.name and result.get("versions") == versions
        if same and float(result.get("decode_tok_s") or 0) > 0:
            return dict(result)
    return None
