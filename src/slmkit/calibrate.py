"""Runtime settings chosen by measurement on this machine, not by a rule written elsewhere.

A thread count that is right on one CPU can halve decode speed on another: ONNX Runtime
GenAI's own default decoded at 16.6 tok/s on one 2-core VM and at 34.8 with
``intra_op_num_threads=2``, while on another machine the same overlay halved speed. So
the first time a backend loads a model on a machine (fingerprint) with given runtime
versions, :func:`tuned` times a few short greedy decodes per candidate setting, keeps
the fastest, and caches {setting -> tok/s} under ``<cache>/calibration/``; later loads
read the cache and measure nothing.

- An explicit option (``threads=``, ``n_threads=``, ``num_threads=``) always wins.
- ``SLMKIT_CALIBRATE=0`` (or the backend option ``calibrate=False``) measures nothing:
  the runtime's default is used, or a setting measured earlier.
- ``SLMKIT_CALIBRATE=refresh`` (what ``slmkit bench --autotune`` sets) measures again.
- A calibration made while other work took half a core or more (:mod:`slmkit.contention`:
  ``/proc/stat`` on Linux, else the load average above the core count) is used, and
  measured again at the next load on a quieter machine.

The stored speeds also rank backends for ``backend="auto"`` (:mod:`slmkit.ranking`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar

from .contention import Window, busy_now
from .errors import ConfigError
from .paths import cache_dir

if TYPE_CHECKING:
    from .backends.base import Backend, TokenEngine
    from .probe import HardwareReport

__all__ = [
    "Trial",
    "backend_versions",
    "best_rate",
    "measure",
    "mode",
    "pick",
    "reloading",
    "thread_candidates",
    "thread_counts",
    "tuned",
]

#: Calibration decodes continue this raw prompt (~40 tokens: prefill counts, briefly).
PROMPT = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a "
    "lantern, a notebook and a flask of tea. From the gallery he could see the harbour, "
    "the fishing boats coming home and, far out,"
)
#: The longest one timed run may take: on a busy machine a bad thread count can decode
#: 15x slower than a good one (llama.cpp with more threads than free cores).
RUN_SECONDS = 2.0
#: Candidates whose decode is within this share of the fastest count as equally fast;
#: among them the one with the fastest prefill wins.
TIE = 0.03
_OFF = {"0", "false", "no", "off"}
_ON = {"", "1", "true", "yes", "on"}
_REFRESH = {"refresh", "force"}

Setting = dict[str, Any]
E = TypeVar("E", bound="TokenEngine")
#: Builds (or re-configures) an engine for a setting; gets the previous engine, which it
#: may reuse in place or must close.
Factory = Callable[[Setting, "E | None"], E]


@dataclass(frozen=True)
class Trial:
    """One candidate's medians: ``{}`` as the setting means the runtime's own default."""

    setting: Setting
    decode_tok_s: float
    prefill_tok_s: float


def mode() -> str:
    """``on`` (measure when nothing is cached), ``off`` or ``refresh``, from SLMKIT_CALIBRATE."""
    value = os.environ.get("SLMKIT_CALIBRATE", "").strip().lower()
    if value in _ON:
        return "on"
    if value in _OFF:
        return "off"
    if value in _REFRESH:
        return "refresh"
    raise ConfigError(
        f"SLMKIT_CALIBRATE={value!r} is not understood; use 1 (measure once per machine), "
        "0 (never measure) or refresh (measure again now)"
    )


def thread_counts(cores: int | None = None) -> list[int]:
    """Thread counts worth trying: every count up to 8 cores; beyond, powers of two and
    the core count (a handful of candidates on any machine)."""
    from .probe import physical_cores

    n = max(1, cores or physical_cores())
    if n <= 8:
        return list(range(1, n + 1))
    return sorted({2**k for k in range(n.bit_length()) if 2**k < n} | {n})


def thread_candidates(
    option: str, *, runtime_default: bool, cores: int | None = None
) -> list[Setting]:
    """Settings of one thread option; ``{}`` (the runtime's own choice) first if wanted."""
    settings: list[Setting] = [{}] if runtime_default else []
    return settings + [{option: n} for n in thread_counts(cores)]


def backend_versions(cls: type[Backend]) -> dict[str, str]:
    """Versions of the distributions a backend runs on: part of every measurement's key."""
    from . import __version__

    versions = {"slmkit": __version__}
    for _, dist in cls.packages:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


# -- measuring --------------------------------------------------------------------------


def _time_decode(engine: TokenEngine, prompt_ids: list[int], tokens: int) -> tuple[float, float]:
    """(prefill tok/s, decode tok/s) of one greedy run, defined as in slmkit._generation;
    cut short after :data:`RUN_SECONDS` (a hopeless candidate costs no more than that)."""
    from .backends.base import Request, Token
    from .params import parse_params

    params = parse_params(None, max_tokens=tokens, temperature=0.0)
    start = perf_counter()
    first = last = start
    count = 0
    iterator = engine.run(Request(params, prompt_ids=prompt_ids))
    try:
        for event in iterator:
            if not isinstance(event, Token):
                continue
            last = perf_counter()
            if count == 0:
                first = last
            count += 1
            if count >= tokens or last - start > RUN_SECONDS:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    prefill = len(prompt_ids) / (first - start) if first > start else 0.0
    decode = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    return prefill, decode


def measure(engine: TokenEngine, setting: Setting, *, runs: int = 2, tokens: int = 16) -> Trial:
    """Medians of ``runs`` short greedy decodes after one warm-up (not counted)."""
    prompt_ids = engine.tokenize(PROMPT, add_special=True)
    _time_decode(engine, prompt_ids, 4)
    timed = [_time_decode(engine, prompt_ids, tokens) for _ in range(runs)]
    return Trial(
        dict(setting),
        statistics.median(d for _, d in timed),
        statistics.median(p for p, _ in timed),
    )


def pick(trials: Sequence[Trial]) -> Trial:
    """The fastest decode; among candidates within :data:`TIE` of it, the fastest prefill."""
    fastest = max(t.decode_tok_s for t in trials)
    close = [t for t in trials if t.decode_tok_s >= (1 - TIE) * fastest]
    return max(close, key=lambda t: (t.prefill_tok_s, t.decode_tok_s))


# -- the cache --------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text.strip().lower())[-80:] or "model"


def _path(report: HardwareReport, backend: str, model: str, options: Mapping[str, Any]) -> Path:
    key = json.dumps(dict(options), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_dir("calibration", report.fingerprint(), _slug(model), f"{backend}-{digest}.json")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("best"), dict)
    return data if ok else None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.partial")
    staging.write_text(json.dumps(data, indent=2), encoding="utf-8")
    staging.replace(path)


def best_rate(report: HardwareReport, cls: type[Backend], model: str) -> float | None:
    """The fastest decode a calibration of ``cls`` on ``model`` measured on this machine
    with the installed versions (any options), or None."""
    folder = cache_dir("calibration", report.fingerprint(), _slug(model))
    versions = backend_versions(cls)
    rates = []
    for path in folder.glob(f"{cls.name}-*.json"):
        data = _read(path)
        if data is not None and data.get("versions") == versions:
            rates.append(float(data["best"].get("decode_tok_s") or 0))
    return max(rates) if rates and max(rates) > 0 else None


# -- choosing at load time --------------------------------------------------------------


def reloading(build: Callable[[Setting], E]) -> Factory[E]:
    """A factory for runtimes that fix the setting at load: close the previous engine
    first (one model in memory at a time), then build a new one."""

    def factory(setting: Setting, previous: E | None) -> E:
        if previous is not None:
            previous.close()
        return build(setting)

    return factory


def tuned(
    cls: type[Backend],
    model: str,
    artifact: str | Path,
    options: Mapping[str, Any],
    explicit: Setting,
    candidates: Sequence[Setting],
    factory: Factory[E],
    *,
    enabled: bool = True,
) -> E:
    """The engine built with the setting this machine measured fastest.

    ``options`` are the load options that change speed apart from the tuned ones (they
    key the cache with machine, backend, model, artifact and versions); ``explicit`` the
    tuned options as the user gave them (any value set: used as given, nothing measured);
    ``candidates`` the settings to try (empty: nothing to tune, e.g. a GPU).
    ``engine.info_extra["settings"]`` says what was chosen and why.
    """
    from .probe import probe

    given = {k: v for k, v in explicit.items() if v is not None}
    if given or not candidates:
        why = "explicit option" if given else "runtime default (nothing to tune here)"
        return _noted(factory(given, None), given, why)
    report = probe()
    versions = backend_versions(cls)
    path = _path(report, cls.name, model, options)
    stored = _read(path)
    current = mode()
    valid = (
        stored is not None
        and stored.get("versions") == versions
        and stored.get("artifact") == str(artifact)
        and isinstance(stored["best"].get("setting"), dict)
    )
    provisional = stored is not None and stored.get("busy") and not busy_now()
    if stored is not None and valid and not provisional and current != "refresh":
        best = dict(stored["best"]["setting"])
        why = f"measured fastest on this machine ({str(stored.get('created', ''))[:10]}, cached)"
        return _noted(factory(best, None), best, why, path)
    if current == "off" or not enabled:
        return _noted(factory({}, None), {}, "runtime default (calibration off)")
    print(
        f"slmkit: measuring {cls.name} settings for {model} on this machine (once; "
        "SLMKIT_CALIBRATE=0 turns this off)",
        file=sys.stderr,
        flush=True,
    )
    began, window = perf_counter(), Window.start()
    engine: E | None = None
    trials = []
    for setting in candidates:
        engine = factory(dict(setting), engine)
        trials.append(measure(engine, setting))
    fastest = pick(trials)
    if engine is None or trials[-1].setting != fastest.setting:
        engine = factory(dict(fastest.setting), engine)
    _write(
        path,
        {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "backend": cls.name,
            "model": model,
            "artifact": str(artifact),
            "options": json.loads(json.dumps(dict(options), default=str)),
            "versions": versions,
            "machine": report.fingerprint(),
            "seconds": round(perf_counter() - began, 2),
            "busy": window.busy(),
            "trials": [asdict(t) for t in trials],
            "best": asdict(fastest),
        },
    )
    return _noted(engine, fastest.setting, "measured fastest on this machine (just now)", path)


def _noted(engine: E, setting: Setting, why: str, path: Path | None = None) -> E:
    """Record the chosen setting in ``engine.info_extra`` (seen as ``LLM.info.extra``)."""
    note: dict[str, Any] = {"chosen": dict(setting) or "runtime default", "why": why}
    if path is not None:
        note["calibration"] = str(path)
    engine.info_extra = {**(engine.info_extra or {}), "settings": note}
    return engine
