"""Prometheus text exposition for ``GET /metrics``, without a client library.

Counters and histograms live here; gauges (queue depth, running requests, loaded models)
are read from the model pool when scraped, so they can never drift from the truth.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

__all__ = ["Metrics"]

Labels = tuple[tuple[str, str], ...]

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PER_TOKEN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


COUNTERS = {
    "slmkit_requests_total": "Requests answered, by endpoint, model and HTTP status.",
    "slmkit_errors_total": "Error answers (and errors inside streams), by endpoint and code.",
    "slmkit_requests_cancelled_total": "Requests whose client hung up before the end.",
    "slmkit_prompt_tokens_total": "Prompt tokens of finished requests.",
    "slmkit_completion_tokens_total": "Generated tokens of finished requests.",
}
HISTOGRAMS = {
    "slmkit_time_to_first_token_seconds": (
        "Request arrival to the first generated text, queueing included.",
        TTFT_BUCKETS,
    ),
    "slmkit_time_per_output_token_seconds": (
        "Decode time per generated token after the first.",
        PER_TOKEN_BUCKETS,
    ),
    "slmkit_request_duration_seconds": (
        "Request arrival to the last byte.",
        DURATION_BUCKETS,
    ),
}


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value


class Metrics:
    """The server's figures. Safe from one event loop (every update runs on it)."""

    def __init__(self, labels: Labels = ()) -> None:
        #: Labels on every series (``replica`` when several processes serve the same models).
        self.labels = labels
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, _Histogram]] = {}

    def count(self, name: str, amount: float = 1, **labels: str) -> None:
        assert name in COUNTERS, name
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        _, buckets = HISTOGRAMS[name]
        series = self._histograms.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        if key not in series:
            series[key] = _Histogram(buckets)
        series[key].observe(value)

    def value(self, name: str, **labels: str) -> float:
        """One counter's current value (0 when never counted)."""
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self, gauges: Iterable[tuple[str, str, Labels, float]]) -> str:
        """The text format; ``gauges`` are (name, help, labels, value) read at scrape time."""
        lines: list[str] = []
        for name, help_text in COUNTERS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for labels, number in sorted(self._counters.get(name, {}).items()):
                lines.append(f"{name}{_format_labels(self.labels + labels)} {number:g}")
        for name, (help_text, _) in HISTOGRAMS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for own, histogram in sorted(self._histograms.get(name, {}).items()):
                labels = self.labels + own
                cumulative = 0
                for bound, count in zip(histogram.buckets, histogram.counts, strict=False):
                    cumulative += count
                    le = _format_labels(labels, f'le="{bound:g}"')
                    lines.append(f"{name}_bucket{le} {cumulative}")
                cumulative += histogram.counts[-1]
                everything = _format_labels(labels, 'le="+Inf"')
                lines.append(f"{name}_bucket{everything} {cumulative}")
                lines.append(f"{name}_sum{_format_labels(labels)} {histogram.total:.6f}")
                lines.append(f"{name}_count{_format_labels(labels)} {cumulative}")
        seen: set[str] = set()
        for name, help_text, labels, number in sorted(gauges, key=lambda gauge: gauge[0]):
            if name not in seen:
                seen.add(name)
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines.append(f"{name}{_format_labels(self.labels + labels)} {number:g}")
        return "\n".join(lines) + "\n"
