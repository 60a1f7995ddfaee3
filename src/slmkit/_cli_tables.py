"""The rich tables the CLI prints for `slmkit probe` and `slmkit bench`."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

__all__ = ["bench_table", "hardware_table"]


def hardware_table(report: Any) -> Table:
    gib = 2**30
    table = Table("", "", title="hardware", show_header=False)
    table.add_row("OS", f"{report.os} {report.os_release} ({report.arch})")
    table.add_row("CPU", report.cpu_model or "?")
    table.add_row("vector extensions", ", ".join(report.vector_extensions) or "none found")
    table.add_row("cores", f"{report.physical_cores} physical, {report.logical_cores} logical")
    if report.memory_total_bytes:
        available = report.memory_available_bytes
        text = f"{report.memory_total_bytes / gib:.1f} GiB total"
        if available is not None:
            text += f", {available / gib:.1f} GiB available"
        table.add_row("memory", text)
    for gpu in report.gpus:
        memory = f", {gpu.memory_bytes / gib:.0f} GiB" if gpu.memory_bytes else ""
        driver = f", driver {gpu.driver}" if gpu.driver else ""
        table.add_row(f"{gpu.api} device", f"{gpu.name}{memory}{driver}")
    if not report.gpus:
        table.add_row("accelerators", "none found")
    flags = [
        name for name in ("apple_silicon", "metal", "rocm", "directml") if getattr(report, name)
    ]
    if flags:
        table.add_row("platform", ", ".join(flags))
    if report.openvino_devices:
        table.add_row("OpenVINO devices", ", ".join(report.openvino_devices))
    if report.builds:
        builds = ", ".join(f"{k}: {v}" for k, v in sorted(report.builds.items()))
        table.add_row("runtime builds", builds)
    for note in report.notes:
        table.add_row("note", note)
    table.add_row("fingerprint", report.fingerprint())
    return table


def bench_table(report: dict[str, Any]) -> Table:
    bandwidth = report["memory_bandwidth_bytes_s"] / 1e9
    title = (
        f"slmkit bench: {report['model']}, up to {report['settings']['max_tokens']} new tokens, "
        f"medians; memory {bandwidth:.1f} GB/s"
    )
    columns = ["backend", "load s", "TTFT ms", "prefill tok/s", "tokens", "decode tok/s"]
    columns += ["of limit"]
    columns += ["peak RSS MB", "slmkit/direct"]
    if report.get("busy"):
        title += (
            f"\n[yellow]machine busy (load {max(report['load_average']):.1f}): figures skewed[/]"
        )
    table = Table(*columns, title=title)
    for r in report["results"]:
        if "error" in r:
            table.add_row(r["backend"], f"[red]{escape(r['error'])}[/]", *[""] * (len(columns) - 2))
            continue
        fraction = r.get("decode_fraction")
        ratio = r.get("overhead_ratio")
        table.add_row(
            r["backend"]
            + (" *" if r["backend"] == report["fastest"] else "")
            + (" (partial: timeout)" if "note" in r else ""),
            f"{r['load_s']:.2f}",
            f"{1000 * r['ttft_s']:.0f}",
            f"{r['prefill_tok_s']:.0f}" if r.get("prefill_tok_s") else "",
            str(r.get("completion_tokens", "")),
            f"{r['decode_tok_s']:.1f}" if r.get("decode_tok_s") else "",
            f"{100 * fraction:.0f}%" if fraction else "",
            f"{r['peak_rss_bytes'] / 1e6:.0f}" if r.get("peak_rss_bytes") else "",
            f"{ratio:.3f}" if ratio else ("n/a" if "overhead_error" in r else ""),
        )
    return table
