"""Which local backend should ``backend="auto"`` use on this machine, and why.

:func:`rank_backends` orders the installed local backends for a model on a
:class:`~slmkit.probe.HardwareReport`. A measurement stored by ``slmkit bench
--autotune`` for this machine, model and backend versions wins over the rule table;
backends without one follow by rule score. Every entry carries the reason for its place.

The rule scores (0-100, higher first) only order backends that nothing has measured on
this machine yet. Each backend carries its own (``Backend.rule_score``), so no table
here names the built-ins and a third-party backend ranks the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calibrate import backend_versions, best_rate
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
    """Local backends, best first: usable ones by measured speed where measured, by rule
    score where not; unusable ones last.

    A measurement is ``slmkit bench --autotune``'s for this machine and model, else the
    speed a load-time calibration (:mod:`slmkit.calibrate`) found. Measured backends are
    ordered by speed among themselves and take the places the rules gave them, so a
    measurement never outranks a backend nothing has compared it with; once every usable
    backend is measured, the order is the measured one. ``candidates`` defaults to every
    registered backend; ``measured=False`` ignores measurements (the pure rule order).
    """
    from . import registry
    from .errors import BackendUnavailable
    from .probe import probe

    report = report or probe()
    ref = _as_ref(model)
    stored = load_measurement(report, ref.name) if measured else None
    unusable: list[Ranked] = []
    if candidates is None:
        classes: list[type[Backend]] = []
        for name in registry.backend_names():
            try:
                classes.append(registry.get_backend(name))
            except BackendUnavailable as exc:
                unusable.append(Ranked(name, False, 0.0, str(exc)))
        candidates = classes
    usable: list[tuple[float, Ranked]] = []
    for cls in candidates:
        if cls.kind != "local":
            continue
        rule, entry = _rank_one(cls, report, ref, stored if measured else None, measured)
        if entry.usable:
            usable.append((rule, entry))
        else:
            unusable.append(entry)
    order = [entry for _, entry in sorted(usable, key=lambda pair: -pair[0])]
    slots = [i for i, entry in enumerate(order) if entry.source == "measured"]
    fastest_first = sorted((order[i] for i in slots), key=lambda entry: -entry.score)
    for slot, entry in zip(slots, fastest_first, strict=True):
        order[slot] = entry
    return order + unusable


def _as_ref(model: str | ModelRef | None) -> ModelRef:
    from .catalog import ModelRef, model_ref
    from .catalog.models import DEFAULT_MODEL

    if isinstance(model, ModelRef):
        return model
    return model_ref(model or DEFAULT_MODEL)


def _rank_one(
    cls: type[Backend],
    report: HardwareReport,
    ref: ModelRef,
    stored: dict[str, Any] | None,
    measured: bool,
) -> tuple[float, Ranked]:
    """(rule score, entry): the entry's score is the measured speed when there is one."""
    availability = cls.check(report)
    if not availability.usable:
        return 0.0, Ranked(cls.name, False, 0.0, availability.reason or "not usable here")
    too_big = _memory_shortfall(cls, report, ref)
    if too_big:
        return 0.0, Ranked(cls.name, False, 0.0, too_big)
    score, reason = cls.rule_score(report)
    result = _measured(cls, stored)
    if result is not None:
        when = str(stored.get("created", ""))[:10] if stored else ""
        reason = (
            f"measured {result['decode_tok_s']:.1f} tok/s decode on this machine "
            f"(slmkit bench --autotune, {when})"
        )
        return score, Ranked(cls.name, True, float(result["decode_tok_s"]), reason, "measured")
    rate = best_rate(report, cls, ref.name) if measured else None
    if rate is not None:
        reason = f"measured {rate:.1f} tok/s decode on this machine (calibration at load)"
        return score, Ranked(cls.name, True, rate, reason, "measured")
    return score, Ranked(cls.name, True, float(score), reason)


def rule_score(backend: str | type[Backend], report: HardwareReport) -> tuple[float, str]:
    """A backend's rule score and reason on ``report`` (its ``Backend.rule_score``); a name
    no installed backend has gets the third-party default."""
    from . import registry
    from .backends.base import Backend
    from .errors import SlmkitError

    if isinstance(backend, str):
        try:
            backend = registry.get_backend(backend)
        except SlmkitError:
            backend = Backend
    return backend.rule_score(report)


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
