"""Load-time calibration with a real runtime: ONNX Runtime GenAI on the default model.

The first load measures ORT's own thread choice and every explicit count and keeps the
fastest; the second load reads the cache; an explicit ``threads=`` measures nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip(
    "onnxruntime_genai", reason="onnx extra not installed: pip install 'slmkit[onnx]'"
)

import slmkit
from slmkit import calibrate, contention
from slmkit.calibrate import thread_counts
from slmkit.convert import cached_artifact
from slmkit.paths import cache_dir

MODEL = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture
def calibrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Calibration on, in a cache of its own that still sees the converted models."""
    if cached_artifact(MODEL, "onnx") is None:
        pytest.skip(f"needs `slmkit convert {MODEL} --to onnx` (once, a few minutes)")
    for name in ("models", "converted"):
        (tmp_path / name).symlink_to(cache_dir(name), target_is_directory=True)
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SLMKIT_CALIBRATE", "1")
    # whatever else the machine is doing: a busy calibration would be measured again
    # (tests/unit/test_calibrate.py and test_contention.py cover that)
    monkeypatch.setattr(calibrate, "busy_now", lambda: False)
    monkeypatch.setattr(contention.Window, "busy", lambda self: False)
    return tmp_path


def test_first_load_measures_the_thread_candidates_and_the_next_reads_them(
    calibrating: Path,
) -> None:
    with slmkit.load(MODEL, backend="onnx") as llm:
        settings = llm.info.extra["settings"]
        assert "just now" in settings["why"]
        stored = json.loads(Path(settings["calibration"]).read_text())
        tried = [trial["setting"] for trial in stored["trials"]]
        assert tried == [{}] + [{"threads": n} for n in thread_counts()]
        assert all(trial["decode_tok_s"] > 0 for trial in stored["trials"])
        assert stored["best"]["setting"] in tried
        assert llm.generate("Paris is the capital of", max_tokens=4).usage.completion_tokens
    with slmkit.load(MODEL, backend="onnx") as again:
        assert "cached" in again.info.extra["settings"]["why"]
        assert again.info.extra["settings"]["chosen"] == (
            stored["best"]["setting"] or "runtime default"
        )


def test_an_explicit_thread_count_is_used_as_given(calibrating: Path) -> None:
    with slmkit.load(MODEL, backend="onnx", threads=1) as llm:
        assert llm.info.extra["settings"] == {"chosen": {"threads": 1}, "why": "explicit option"}
    assert not list((calibrating / "calibration").rglob("*.json"))
