"""Risky configurations are tried in a child process; the parent survives and remembers.

The checks (tests/unit/trial_checks.py) kill themselves with real signals, so these
tests need no faulting CPU: the interpreter running them must come through each one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from slmkit import errors, trial
from slmkit.backends.base import Backend, ModelRef

from .scripted_engine import ScriptedEngine

pytestmark = pytest.mark.timeout(120)

FAST, SAFE = {"mode": "fast"}, {"mode": "safe"}
CHECKS = "tests.unit.trial_checks"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "children.txt"


def children(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.exists() else []


def decide(check: str, marker: Path, **kwargs: Any) -> trial.Decision:
    return trial.decide(
        f"test.{check}",
        f"{CHECKS}:{check}",
        [FAST, SAFE],
        backend="test",
        args={"marker": str(marker)},
        **{"versions": {"runtime": "1.0"}, **kwargs},
    )


class CrashProneBackend(Backend):
    """A backend whose fast configuration faults natively, like llama.cpp on AMX VMs."""

    name = "crashprone"
    extra = "crashprone"
    check_name = "faults_unless_safe"

    def load(self, model: ModelRef, options: Mapping[str, Any]) -> ScriptedEngine:
        decision = decide(self.check_name, Path(options["marker"]))
        config = decision.require()
        engine = ScriptedEngine(reply=f"loaded in mode {config['mode']}")
        engine.info_extra = {"crashprone": {**config, "why": decision.reason}}
        return engine


def test_a_faulting_configuration_falls_back_to_the_safe_one(marker: Path) -> None:
    engine = CrashProneBackend().load(ModelRef("m"), {"marker": str(marker)})
    assert engine.reply == b"loaded in mode safe"
    why = engine.info_extra["crashprone"]["why"]  # type: ignore[index]
    assert "mode=fast crashed with SIGSEGV" in why and "native fault" in why
    assert children(marker) == ["fast", "safe"]


def test_the_verdict_is_cached_and_a_second_load_spawns_no_child(marker: Path) -> None:
    first = decide("faults_unless_safe", marker)
    second = decide("faults_unless_safe", marker)
    assert not first.cached and second.cached
    assert second.chosen == SAFE and second.verdicts[0].signal == "SIGSEGV"
    assert children(marker) == ["fast", "safe"]
    assert "cached from" in second.reason and "mode=safe, because" in second.reason


def test_a_new_runtime_version_runs_the_trial_again(marker: Path) -> None:
    decide("faults_unless_safe", marker)
    again = decide("faults_unless_safe", marker, versions={"runtime": "1.1"})
    assert not again.cached and children(marker) == ["fast", "safe", "fast", "safe"]
    # The old version's decision is superseded: one decision per machine and context.
    assert [d.key["versions"] for d in trial.stored_decisions()] == [{"runtime": "1.1"}]


def test_another_model_kind_runs_its_own_trial(marker: Path) -> None:
    decide("faults_unless_safe", marker, context={"types": "Q4_K"})
    decide("faults_unless_safe", marker, context={"types": "Q8_0"})
    assert len(children(marker)) == 4 and len(trial.stored_decisions()) == 2


def test_when_every_configuration_faults_load_raises_a_typed_error(marker: Path) -> None:
    backend = CrashProneBackend()
    backend.check_name = "always_faults"
    with pytest.raises(errors.BackendUnavailable, match="no configuration is safe") as caught:
        backend.load(ModelRef("m"), {"marker": str(marker)})
    message = str(caught.value)
    assert "SIGILL" in message and "SIGBUS" in message and "--retrial" in message


def test_a_python_error_in_the_check_chooses_that_configuration_uncached(marker: Path) -> None:
    decision = decide("raises", marker)
    assert decision.chosen == FAST and decision.verdicts[0].outcome == "failed"
    assert "ValueError: model file not understood" in decision.verdicts[0].detail
    # Safe to load in-process (the same error is raised there, typed), but it says
    # something about the model or the environment, not the machine: not cached.
    assert not decision.conclusive and trial.stored_decisions() == []
    assert len(children(marker)) == 1


def test_a_hanging_configuration_times_out_and_is_not_cached(marker: Path) -> None:
    decision = decide("hangs", marker, timeout_s=3)
    assert decision.verdicts[0].outcome == "timed_out" and decision.chosen == SAFE
    assert not decision.conclusive and trial.stored_decisions() == []


def test_a_child_killed_from_outside_falls_back_without_caching(marker: Path) -> None:
    decision = decide("killed_from_outside", marker)
    assert decision.verdicts[0].signal == "SIGKILL" and decision.chosen == SAFE
    assert not decision.conclusive and trial.stored_decisions() == []


def test_a_child_that_never_reaches_the_check_uses_the_safest(marker: Path) -> None:
    decision = decide("exits_before_the_check", marker)
    assert decision.chosen == SAFE and not decision.conclusive
    assert "exit 3" in decision.verdicts[0].detail


def test_forget_deletes_this_machines_decisions(marker: Path) -> None:
    decide("faults_unless_safe", marker)
    assert trial.forget() == 1 and trial.stored_decisions() == []
    decide("faults_unless_safe", marker)
    assert len(children(marker)) == 4


def test_a_damaged_cache_file_is_tried_again(marker: Path) -> None:
    decide("faults_unless_safe", marker)
    (path,) = Path(os.environ["SLMKIT_CACHE_DIR"], "trials").glob("*.json")
    path.write_text("{not json")
    assert not decide("faults_unless_safe", marker).cached


@pytest.mark.parametrize(
    ("code", "name", "words"),
    [
        (-signal.SIGSEGV, "SIGSEGV", "native fault"),
        (-signal.SIGILL, "SIGILL", "instruction this CPU does not support"),
        (-signal.SIGKILL, "SIGKILL", "memory"),
        (0xC0000005, "ACCESS_VIOLATION", "native fault"),
        (3, None, "exit 3"),
    ],
)
def test_exit_codes_name_the_signal(code: int, name: str | None, words: str) -> None:
    found, text = trial.describe_exit(code)
    assert found == name and words in text
