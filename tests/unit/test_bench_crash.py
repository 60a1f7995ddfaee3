"""A bench row whose backend crashed natively says so, and what slmkit does about it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmkit import registry, trial
from slmkit.bench import run_bench

from .test_registry import install_distribution

pytestmark = pytest.mark.timeout(180)

PLUGIN = """
import os, signal
from slmkit.backends.base import Backend

class SegfaultingBackend(Backend):
    name = "segfaulting"
    extra = "segfaulting"

    def load(self, model, options):
        os.kill(os.getpid(), signal.SIGSEGV)
"""


@pytest.fixture
def crashing_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A backend whose load dies of SIGSEGV, visible to the bench's child processes too."""
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(
        site,
        "slmkit-segfault-plugin",
        "slmkit_segfault_plugin",
        PLUGIN,
        "[slmkit.backends]\nsegfaulting = slmkit_segfault_plugin:SegfaultingBackend\n",
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path / "cache"))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


def test_a_crashed_row_names_the_signal_and_that_no_trial_covers_it(
    crashing_plugin: None,
) -> None:
    report = run_bench("gemma-3-270m", ["segfaulting"], repeats=1, max_tokens=2)
    (row,) = report["results"]
    assert row["crash_signal"] == "SIGSEGV"
    assert (
        "segfaulting crashed with SIGSEGV (invalid memory access: a native fault)" in row["error"]
    )
    assert "no crash trial for this backend" in row["error"] and "exit -11" not in row["error"]


def test_a_crashed_row_names_the_configuration_its_trial_chose(
    crashing_plugin: None, tmp_path: Path
) -> None:
    trial.decide(
        "segfaulting.mode",
        "tests.unit.trial_checks:faults_unless_safe",
        [{"mode": "fast"}, {"mode": "safe"}],
        backend="segfaulting",
        args={"marker": str(tmp_path / "marker")},
    )
    report = run_bench("gemma-3-270m", ["segfaulting"], repeats=1, max_tokens=2)
    (row,) = report["results"]
    assert "mode=safe, because mode=fast crashed with SIGSEGV" in row["error"]
    assert "this fault is one the trial does not cover" in row["error"]
