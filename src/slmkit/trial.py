"""Try a risky runtime configuration in a child process, once per machine.

A native fault (a segfault in a C library) cannot be caught in Python: the only
safe way to learn whether a configuration faults on an unknown machine is to run
it in a child. :func:`decide` runs a named check (``"package.module:function"``)
for each candidate configuration, fastest first, until one passes; it classifies
each outcome (ok, crashed with a named signal, failed with a Python error, timed
out) and caches the decision as JSON under ``cache_dir("trials")``, keyed by the
machine fingerprint, the runtime versions and the candidates. Later loads read
the cached decision: a machine that passed pays nothing after its first trial.
``slmkit probe --retrial`` (:func:`forget`) deletes this machine's decisions.
"""

from __future__ import annotations

import faulthandler
import hashlib
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

from .errors import BackendUnavailable
from .paths import cache_dir

__all__ = ["Decision", "Verdict", "decide", "describe_exit", "forget", "stored_decisions"]

Outcome = Literal["ok", "crashed", "failed", "timed_out"]

_SIGNAL_MEANING = {
    "SIGSEGV": "invalid memory access: a native fault",
    "SIGBUS": "bad memory access: a native fault",
    "SIGILL": "an instruction this CPU does not support",
    "SIGFPE": "an arithmetic fault in native code",
    "SIGABRT": "the runtime aborted itself",
    "SIGKILL": "killed from outside, often for running out of memory",
}
#: Deaths that say the configuration faulted; SIGKILL or SIGTERM come from outside (the
#: OOM killer, a user) and say nothing about it, so such a verdict is not cached.
_FAULTS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT"}
#: Windows reports a native fault as an NTSTATUS exit code.
_NTSTATUS = {
    0xC0000005: ("ACCESS_VIOLATION", "invalid memory access: a native fault"),
    0xC000001D: ("ILLEGAL_INSTRUCTION", "an instruction this CPU does not support"),
    0xC0000094: ("INTEGER_DIVIDE_BY_ZERO", "an arithmetic fault in native code"),
    0xC00000FD: ("STACK_OVERFLOW", "a native stack overflow"),
    0xC0000409: ("STACK_BUFFER_OVERRUN", "the runtime aborted itself"),
}
_CHILD = (
    "import json, sys; payload = json.loads(sys.argv[1]); sys.path[:0] = payload['path']; "
    "from slmkit.trial import _child_main; sys.exit(_child_main(payload))"
)
_RESET = "slmkit probe --retrial runs the trials again"
_log = logging.getLogger(__name__)


def _is_ntstatus(name: str | None) -> bool:
    return any(name == known for known, _ in _NTSTATUS.values())


def describe_exit(returncode: int) -> tuple[str | None, str]:
    """The signal (or Windows fault) a child process died of, and what it means; a
    ``(None, "exit N")`` for an ordinary exit code."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        meaning = _SIGNAL_MEANING.get(name)
        return name, f"{name} ({meaning})" if meaning else name
    if returncode in _NTSTATUS:
        name, meaning = _NTSTATUS[returncode]
        return name, f"{name} ({meaning})"
    return None, f"exit {returncode}"


@dataclass(frozen=True)
class Verdict:
    """How one configuration fared in its child process."""

    config: dict[str, Any]
    outcome: Outcome
    #: The signal's name when it crashed (SIGSEGV, SIGILL, ACCESS_VIOLATION, ...).
    signal: str | None = None
    #: The error, the signal's meaning, or the last lines the child wrote to stderr.
    detail: str = ""
    seconds: float = 0.0
    #: False when the child died before it could run the check (a broken environment).
    reached_check: bool = True

    @property
    def safe(self) -> bool:
        return self.outcome == "ok"

    @property
    def faulted(self) -> bool:
        """Died of a native fault of its own (not killed from outside)."""
        return self.outcome == "crashed" and (self.signal in _FAULTS or _is_ntstatus(self.signal))

    def describe(self) -> str:
        if self.outcome == "ok":
            return f"passed ({self.seconds:.1f} s)"
        if self.outcome == "timed_out":
            return f"timed out after {self.seconds:.0f} s"
        return f"{self.outcome} with {self.detail}" if self.detail else self.outcome


@dataclass(frozen=True)
class Decision:
    """The configuration to load, the verdicts that chose it, and what they were keyed by."""

    trial: str
    backend: str
    #: The first candidate that passed, or one whose check raised a Python error (the
    #: same error is then raised in-process, which is safe); None when every one faulted.
    chosen: dict[str, Any] | None
    verdicts: tuple[Verdict, ...]
    key: dict[str, Any]
    created: str
    #: Read from the cache rather than tried now.
    cached: bool = False
    #: Only conclusive decisions (each verdict ok or a native fault) are cached; a timeout,
    #: a Python error, a kill from outside or a child that could not run the check says
    #: nothing certain about the machine.
    conclusive: bool = True
    note: str = field(default="")

    @property
    def reason(self) -> str:
        """One sentence for ``LLM.info``, ``slmkit probe`` and ``slmkit backends``."""
        tried = "; ".join(f"{_config_text(v.config)} {v.describe()}" for v in self.verdicts)
        when = f"cached from {self.created[:10]}" if self.cached else "just now"
        if self.chosen is None:
            return f"no configuration is safe on this machine: {tried} ({when})"
        first = self.verdicts[0]
        if len(self.verdicts) == 1 and first.safe:
            text = (
                f"{_config_text(self.chosen)}: passed its trial on this machine "
                f"({first.seconds:.1f} s, {when})"
            )
        else:
            text = f"{_config_text(self.chosen)}, because {tried} on this machine ({when})"
        return f"{text}; {self.note}" if self.note else text

    def require(self) -> dict[str, Any]:
        """The chosen configuration, or BackendUnavailable saying that none is safe here."""
        if self.chosen is None:
            raise BackendUnavailable(
                f"backend {self.backend!r}: {self.reason}. Use another backend (slmkit "
                f"backends), or reinstall the runtime built for this CPU; {_RESET}"
            )
        return self.chosen

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cached")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        values = dict(data)
        values["verdicts"] = tuple(Verdict(**v) for v in values["verdicts"])
        return cls(**values, cached=True)


def _config_text(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "the default configuration"


def decide(
    trial: str,
    check: str,
    candidates: Sequence[Mapping[str, Any]],
    *,
    backend: str,
    args: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
    timeout_s: float = 120.0,
) -> Decision:
    """The first of ``candidates`` (fastest first) that runs ``check(**args, **candidate)``
    without faulting on this machine: from the cache, or by trying each in a child.

    ``versions`` (runtime versions and builds) and ``context`` (e.g. the model's
    quantization mix) key the cached decision with the machine fingerprint, so a new
    runtime, a rebuilt one or another kind of model is tried again.
    """
    from .probe import probe

    key = {
        "trial": trial,
        "machine": probe().fingerprint(),
        "versions": dict(versions or {}),
        "context": dict(context or {}),
        "candidates": [dict(c) for c in candidates],
    }
    key = json.loads(json.dumps(key, sort_keys=True))
    path = _decision_path(trial, key)
    stored = _read(path)
    if stored is not None and stored.key == key:
        return stored
    verdicts: list[Verdict] = []
    chosen: dict[str, Any] | None = None
    note = ""
    for candidate in key["candidates"]:
        _log.info("%s: trying %s in a child process", trial, _config_text(candidate))
        verdict = run_in_child(check, {**(args or {}), **candidate}, timeout_s, candidate)
        verdicts.append(verdict)
        if not verdict.safe:  # shown once per machine: why this load is not the fastest
            _log.warning("%s: %s %s", trial, _config_text(candidate), verdict.describe())
        if verdict.outcome in ("ok", "failed"):
            chosen = candidate
            break
    conclusive = all(v.outcome == "ok" or v.faulted for v in verdicts)
    if not verdicts[-1].reached_check:
        # The child never reached the check (a broken environment): trust nothing risky.
        chosen, note = key["candidates"][-1], "the trial could not run, so the safest is used"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    decision = Decision(
        trial, backend, chosen, tuple(verdicts), key, created, conclusive=conclusive, note=note
    )
    if conclusive:
        _write(path, decision)
        _drop_superseded(decision)
    return decision


def run_in_child(
    check: str, kwargs: Mapping[str, Any], timeout_s: float, config: Mapping[str, Any]
) -> Verdict:
    """Run ``check(**kwargs)`` in a fresh interpreter and classify how it ended."""
    with tempfile.TemporaryDirectory(prefix="slmkit-trial-") as tmp:
        result = Path(tmp, "result.json")
        payload = {"check": check, "kwargs": dict(kwargs), "result": str(result)}
        payload["path"] = [p for p in sys.path if p]
        command = [sys.executable, "-c", _CHILD, json.dumps(payload)]
        start = perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return Verdict(dict(config), "timed_out", seconds=perf_counter() - start)
        seconds = perf_counter() - start
        if proc.returncode == 0:
            return Verdict(dict(config), "ok", seconds=seconds)
        name, words = describe_exit(proc.returncode)
        if name is not None:
            return Verdict(dict(config), "crashed", name, words, seconds)
        if result.is_file():
            error = json.loads(result.read_text(encoding="utf-8"))["error"]
            return Verdict(dict(config), "failed", None, error, seconds)
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
        return Verdict(dict(config), "failed", None, f"{words}: {tail}", seconds, False)


def _child_main(payload: Mapping[str, Any]) -> int:
    """In the child: run the check; a Python error is written to the result file."""
    faulthandler.enable()  # a fault prints the Python stack to stderr before dying
    module_name, _, function = str(payload["check"]).partition(":")
    try:
        getattr(importlib.import_module(module_name), function)(**payload["kwargs"])
    except Exception as exc:
        error = {"error": f"{type(exc).__name__}: {exc}"}
        Path(payload["result"]).write_text(json.dumps(error), encoding="utf-8")
        return 1
    return 0


def stored_decisions(machine: str | None = None) -> list[Decision]:
    """The cached decisions for ``machine`` (default: this one), newest first."""
    if machine is None:
        from .probe import probe

        machine = probe().fingerprint()
    found = [d for d in map(_read, _files()) if d is not None and d.key["machine"] == machine]
    return sorted(found, key=lambda d: d.created, reverse=True)


def forget(machine: str | None = None) -> int:
    """Delete the cached decisions for ``machine`` (default: this one); how many went."""
    decisions = stored_decisions(machine)
    for decision in decisions:
        _decision_path(decision.trial, decision.key).unlink(missing_ok=True)
    return len(decisions)


def _files() -> list[Path]:
    folder = cache_dir("trials")
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _decision_path(trial: str, key: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir("trials", f"{trial}-{digest}.json")


def _read(path: Path) -> Decision | None:
    """A cached decision, or None when absent or unreadable (then it is tried again)."""
    try:
        return Decision.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write(path: Path, decision: Decision) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(decision.to_dict(), indent=2), encoding="utf-8")
    staging.replace(path)


def _drop_superseded(decision: Decision) -> None:
    """Delete decisions the new one replaces: same trial, machine and context, other
    versions or candidates (an upgraded runtime's old verdicts mean nothing now)."""
    keep = _decision_path(decision.trial, decision.key)
    for path in _files():
        old = _read(path)
        if old is None or path == keep or old.trial != decision.trial:
            continue
        if old.key["machine"] == decision.key["machine"] and (
            old.key["context"] == decision.key["context"]
        ):
            path.unlink(missing_ok=True)
