"""``slmkit bench --plot FILE.svg``: the bench figures as a bar chart, in plain SVG.

Written by hand rather than with a plotting library: three bar panels are a few dozen
lines of SVG, and the chart then needs no dependency, renders in any browser and in the
docs, and diffs as text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from .errors import InvalidRequest

__all__ = ["bench_svg", "plot"]


def _scaled(key: str, factor: float) -> Callable[[dict[str, Any]], float | None]:
    def value(row: dict[str, Any]) -> float | None:
        found = row.get(key)
        return float(found) * factor if found else None

    return value


#: (title, how to read it, value of a result row or None) for each panel.
PANELS = (
    ("decode tok/s", "higher is better", _scaled("decode_tok_s", 1.0)),
    ("TTFT ms", "lower is better", _scaled("ttft_s", 1000.0)),
    ("peak RSS MB", "lower is better", _scaled("peak_rss_bytes", 1e-6)),
)
PANEL_W, LABEL_W, ROW_H, TOP, GAP = 210, 100, 26, 78, 20
BAR, BEST, INK, MUTED = "#5c6bc0", "#1a237e", "#212121", "#616161"


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def bench_svg(report: dict[str, Any]) -> str:
    """The SVG document for a ``run_bench`` report: one row per measured backend, one panel
    per figure; the fastest backend's bars are darker."""
    rows = [r for r in report["results"] if r.get("decode_tok_s")]
    if not rows:
        raise InvalidRequest("no backend produced a measurement; nothing to plot", field="plot")
    width = LABEL_W + len(PANELS) * (PANEL_W + GAP)
    height = TOP + len(rows) * ROW_H + 40
    hardware = report.get("hardware", {})
    settings = report.get("settings", {})
    loads = [v for v in report.get("load_average", []) if v is not None]
    machine = f"{hardware.get('cpu_model') or 'CPU'}, {hardware.get('logical_cores', '?')} cores"
    if loads:
        machine += f", load average {min(loads):.1f}-{max(loads):.1f}"
        if report.get("busy"):
            machine += " (busy: figures skewed)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        _text(
            10,
            22,
            f"slmkit bench: {report['model']}, up to {settings.get('max_tokens', '?')} new "
            "tokens, medians",
            font_size="15",
            font_weight="bold",
            fill=INK,
        ),
        _text(10, 40, machine, fill=MUTED),
    ]
    failed = [r["backend"] for r in report["results"] if not r.get("decode_tok_s")]
    if failed:
        parts.append(_text(10, height - 12, "not measured: " + ", ".join(failed), fill=MUTED))
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H + ROW_H * 0.65
        parts.append(_text(LABEL_W - 8, y, row["backend"], text_anchor="end", fill=INK))
    for p, (title, hint, value_of) in enumerate(PANELS):
        left = LABEL_W + p * (PANEL_W + GAP)
        values = [value_of(r) for r in rows]
        top = max((v for v in values if v), default=0.0) or 1.0
        parts.append(_text(left, TOP - 22, title, font_weight="bold", fill=INK))
        parts.append(_text(left, TOP - 8, hint, fill=MUTED, font_size="11"))
        for i, (row, value) in enumerate(zip(rows, values, strict=True)):
            if value is None:
                continue
            y = TOP + i * ROW_H + 4
            bar = max(1.0, (PANEL_W - 60) * value / top)
            colour = BEST if row["backend"] == report.get("fastest") else BAR
            parts.append(
                f'<rect x="{left}" y="{y:.1f}" width="{bar:.1f}" height="{ROW_H - 8}" '
                f'fill="{colour}"/>'
            )
            label = f"{value:.1f}" if value < 100 else f"{value:.0f}"
            parts.append(_text(left + bar + 4, y + ROW_H * 0.5, label, fill=INK))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def plot(report: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`bench_svg` to ``path`` (a ``.svg`` file) and return the path."""
    out = Path(path)
    if out.suffix.lower() != ".svg":
        raise InvalidRequest(
            f"--plot writes an SVG chart; name the file *.svg, not {out.name!r}", field="plot"
        )
    out.write_text(bench_svg(report), encoding="utf-8")
    return out
