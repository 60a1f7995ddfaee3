"""slmkit bench --plot: the SVG chart of a bench report."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from slmkit.benchplot import BEST, PANELS, bench_svg, plot
from slmkit.errors import InvalidRequest

SVG = "{http://www.w3.org/2000/svg}"


def row(backend: str, decode: float, ttft: float, rss_mb: float) -> dict[str, Any]:
    return {
        "backend": backend,
        "decode_tok_s": decode,
        "ttft_s": ttft,
        "peak_rss_bytes": int(rss_mb * 1e6),
    }


def report(*rows: dict[str, Any], busy: bool = False) -> dict[str, Any]:
    measured = [r for r in rows if r.get("decode_tok_s")]
    return {
        "model": "gemma-3-270m",
        "hardware": {"cpu_model": "Test CPU <x86>", "logical_cores": 2},
        "settings": {"max_tokens": 64},
        "load_average": [0.5, 3.5],
        "busy": busy,
        "results": list(rows),
        "fastest": max(measured, key=lambda r: r["decode_tok_s"])["backend"] if measured else None,
    }


def bars(svg: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(svg)
    return [r for r in root.iter(f"{SVG}rect") if r.get("height") != root.get("height")]


def test_one_bar_per_backend_and_figure_scaled_to_the_largest() -> None:
    svg = bench_svg(report(row("llamacpp", 40.0, 0.6, 700), row("onnx", 20.0, 1.2, 350)))
    drawn = bars(svg)
    assert len(drawn) == 2 * len(PANELS)
    decode_llama, decode_onnx = (float(r.get("width", 0)) for r in drawn[:2])
    assert decode_llama == pytest.approx(2 * decode_onnx)


def test_the_fastest_backend_stands_out_and_every_value_is_labelled() -> None:
    svg = bench_svg(report(row("llamacpp", 40.0, 0.6, 700), row("onnx", 20.0, 1.2, 350)))
    colours = [r.get("fill") for r in bars(svg)]
    assert colours.count(BEST) == len(PANELS)  # llamacpp's bars, one per panel
    text = list(ElementTree.fromstring(svg).itertext())
    for label in ("llamacpp", "onnx", "40.0", "600", "1200", "700", "350"):
        assert label in text


def test_text_is_escaped_and_the_machine_state_is_stated() -> None:
    svg = bench_svg(report(row("llamacpp", 40.0, 0.6, 700), busy=True))
    text = " ".join(ElementTree.fromstring(svg).itertext())  # parses: < was escaped
    assert "Test CPU <x86>, 2 cores, load average 0.5-3.5 (busy: figures skewed)" in text


def test_failed_backends_are_named_not_drawn() -> None:
    failed = {"backend": "mlx", "error": "timed out"}
    svg = bench_svg(report(row("llamacpp", 40.0, 0.6, 700), failed))
    assert len(bars(svg)) == len(PANELS)
    assert "not measured: mlx" in " ".join(ElementTree.fromstring(svg).itertext())


def test_nothing_measured_is_an_error() -> None:
    with pytest.raises(InvalidRequest, match="nothing to plot"):
        bench_svg(report({"backend": "mlx", "error": "timed out"}))


def test_plot_writes_svg_files_only(tmp_path: Path) -> None:
    data = report(row("llamacpp", 40.0, 0.6, 700))
    written = plot(data, tmp_path / "bench.svg")
    assert ElementTree.parse(written).getroot().tag == f"{SVG}svg"
    with pytest.raises(InvalidRequest, match=r"\*\.svg"):
        plot(data, tmp_path / "bench.png")
