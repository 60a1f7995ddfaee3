"""Load-time calibration: the fastest measured setting is used, cached, and never overrides
an explicit option; measurements rank backends for auto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from slmkit import calibrate, contention
from slmkit.backends.base import Backend, Engine, ModelRef, Request, Token
from slmkit.calibrate import Setting, Trial, pick, thread_counts, tuned
from slmkit.errors import ConfigError
from slmkit.probe import HardwareReport, probe
from slmkit.ranking import rank_backends

from .scripted_engine import ScriptedEngine

#: Seconds per generated token for each candidate: two threads are fastest here.
PACE = {None: 0.004, 1: 0.003, 2: 0.001, 3: 0.25}


class PacedEngine(ScriptedEngine):
    """A scripted engine that decodes at a speed set by its thread setting."""

    def __init__(self, threads: int | None) -> None:
        super().__init__("calibration text " * 4, endless=True)
        self.threads = threads

    def run(self, request: Request) -> Iterator[Token]:
        for token in super().run(request):
            time.sleep(PACE[self.threads])
            yield token


def stand_in(backend_name: str, score: float = 50.0) -> type[Backend]:
    class StandIn(Backend):
        name = backend_name
        extra = backend_name

        @classmethod
        def rule_score(cls, report: HardwareReport) -> tuple[float, str]:
            return score, f"{backend_name} rule"

        def load(self, model: ModelRef, options: Mapping[str, Any]) -> Engine:
            raise NotImplementedError("these tests build engines through tuned()")

    return StandIn


class Factory:
    """Builds paced engines and records which settings it was asked for."""

    def __init__(self) -> None:
        self.asked: list[Setting] = []
        self.closed = 0

    def __call__(self, setting: Setting, previous: PacedEngine | None) -> PacedEngine:
        self.asked.append(dict(setting))
        if previous is not None:
            previous.close()
            self.closed += 1
        return PacedEngine(setting.get("threads"))


CANDIDATES: list[Setting] = [{}, {"threads": 1}, {"threads": 2}]


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SLMKIT_CALIBRATE", "1")
    machine_is_busy(monkeypatch, False)  # whatever the machine is doing
    return tmp_path


def machine_is_busy(monkeypatch: pytest.MonkeyPatch, busy: bool) -> None:
    """The calibration sees the machine as busy (or quiet), now and while it measures."""
    monkeypatch.setattr(calibrate, "busy_now", lambda: busy)
    monkeypatch.setattr(contention.Window, "busy", lambda self: busy)


def run(factory: Factory, backend: type[Backend], explicit: int | None = None) -> PacedEngine:
    return tuned(
        backend,
        "some-model",
        "/models/some-model",
        {"provider": "cpu"},
        {"threads": explicit},
        CANDIDATES,
        factory,
    )


def test_thread_counts_try_every_count_on_small_machines_and_a_handful_on_big_ones() -> None:
    assert thread_counts(2) == [1, 2]
    assert thread_counts(8) == list(range(1, 9))
    assert thread_counts(12) == [1, 2, 4, 8, 12]
    assert thread_counts(64) == [1, 2, 4, 8, 16, 32, 64]


def test_pick_takes_the_fastest_decode_and_breaks_near_ties_by_prefill() -> None:
    slow = Trial({"threads": 1}, 20.0, 900.0)
    fast = Trial({"threads": 2}, 40.0, 100.0)
    near = Trial({}, 39.5, 400.0)
    assert pick([slow, fast]) == fast
    assert pick([slow, fast, near]) == near


def test_first_load_measures_every_candidate_and_keeps_the_fastest(own_cache: Path) -> None:
    factory = Factory()
    engine = run(factory, stand_in("paced"))
    assert engine.threads == 2
    assert factory.asked == CANDIDATES  # the fastest was measured last: no reload
    assert factory.closed == 2  # one engine in memory at a time
    settings = engine.info_extra["settings"] if engine.info_extra else {}
    assert settings["chosen"] == {"threads": 2}
    assert "just now" in settings["why"]
    stored = json.loads(Path(settings["calibration"]).read_text())
    rates = {json.dumps(t["setting"]): t["decode_tok_s"] for t in stored["trials"]}
    assert rates['{"threads": 2}'] > rates['{"threads": 1}'] > rates["{}"]


def test_a_hopeless_candidate_costs_at_most_the_run_time_cap(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calibrate, "RUN_SECONDS", 0.3)
    began = time.perf_counter()
    engine = tuned(
        stand_in("paced"),
        "some-model",
        "/models/some-model",
        {},
        {"threads": None},
        [{"threads": 3}, {"threads": 2}],
        Factory(),
    )
    assert engine.threads == 2
    # uncapped, threads=3 alone would take (4 + 2 * 16) tokens * 0.25 s = 9 s
    assert time.perf_counter() - began < 4.0


def test_the_next_load_reads_the_cache_and_measures_nothing(own_cache: Path) -> None:
    backend = stand_in("paced")
    run(Factory(), backend)
    factory = Factory()
    engine = run(factory, backend)
    assert factory.asked == [{"threads": 2}]
    assert engine.info_extra and "cached" in engine.info_extra["settings"]["why"]


def test_an_explicit_option_wins_and_measures_nothing(own_cache: Path) -> None:
    factory = Factory()
    engine = run(factory, stand_in("paced"), explicit=1)
    assert factory.asked == [{"threads": 1}]
    assert engine.threads == 1
    assert not list(own_cache.rglob("*.json"))


def test_calibration_off_uses_the_runtime_default(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_CALIBRATE", "0")
    factory = Factory()
    engine = run(factory, stand_in("paced"))
    assert factory.asked == [{}]
    assert engine.info_extra and "calibration off" in engine.info_extra["settings"]["why"]


def test_refresh_measures_again(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = stand_in("paced")
    run(Factory(), backend)
    monkeypatch.setenv("SLMKIT_CALIBRATE", "refresh")
    factory = Factory()
    run(factory, backend)
    assert factory.asked == CANDIDATES


def test_a_calibration_made_on_a_busy_machine_is_measured_again_when_it_is_quiet(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = stand_in("paced")
    machine_is_busy(monkeypatch, True)
    run(Factory(), backend)
    busy_again = Factory()
    run(busy_again, backend)
    assert busy_again.asked == [{"threads": 2}]
    machine_is_busy(monkeypatch, False)
    quiet = Factory()
    run(quiet, backend)
    assert quiet.asked == CANDIDATES


def test_a_calibration_of_other_versions_is_measured_again(own_cache: Path) -> None:
    backend = stand_in("paced")
    engine = run(Factory(), backend)
    path = Path(engine.info_extra["settings"]["calibration"] if engine.info_extra else "")
    data = json.loads(path.read_text())
    data["versions"] = {"slmkit": "0.0.1"}
    path.write_text(json.dumps(data))
    factory = Factory()
    run(factory, backend)
    assert factory.asked == CANDIDATES


def test_an_unknown_calibrate_value_is_a_config_error_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLMKIT_CALIBRATE", "sometimes")
    with pytest.raises(ConfigError, match="refresh"):
        calibrate.mode()


# -- measurements rank backends for auto ---------------------------------------------------


def calibrated(backend: type[Backend], tok_s: float, model: str) -> None:
    """Store a calibration as tuned() would, with a given best decode speed."""
    path = calibrate._path(probe(), backend.name, model, {})
    trial = {"setting": {}, "decode_tok_s": tok_s, "prefill_tok_s": 100.0}
    calibrate._write(
        path,
        {"versions": calibrate.backend_versions(backend), "artifact": "x", "best": trial},
    )


def test_a_calibrated_backend_is_ranked_by_its_measured_speed(own_cache: Path) -> None:
    first, second = stand_in("first", 70.0), stand_in("second", 60.0)
    model = "gemma-3-270m"
    calibrated(first, 20.0, model)
    calibrated(second, 40.0, model)
    ranking = rank_backends(probe(), model, candidates=[first, second])
    assert [r.name for r in ranking] == ["second", "first"]
    assert ranking[0].source == "measured" and "40.0 tok/s" in ranking[0].reason


def test_a_measurement_never_outranks_a_backend_it_was_not_compared_with(
    own_cache: Path,
) -> None:
    top, slow, fast = stand_in("top", 90.0), stand_in("slow", 70.0), stand_in("fast", 10.0)
    model = "gemma-3-270m"
    calibrated(slow, 20.0, model)
    calibrated(fast, 40.0, model)
    ranking = rank_backends(probe(), model, candidates=[top, slow, fast])
    assert [r.name for r in ranking] == ["top", "fast", "slow"]
    assert ranking[0].source == "rules"
    by_rules = rank_backends(probe(), model, candidates=[top, slow, fast], measured=False)
    assert [r.name for r in by_rules] == ["top", "slow", "fast"]
