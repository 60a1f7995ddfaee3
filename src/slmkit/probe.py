"""Hardware facts, read without importing any runtime."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache

__all__ = ["physical_cores"]


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical CPU cores (not hyper-threads): the best default thread count for decoding."""
    system = platform.system()
    if system == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                pairs = set()
                physical = core = ""
                for line in handle:
                    key, _, value = line.partition(":")
                    key = key.strip()
                    if key == "physical id":
                        physical = value.strip()
                    elif key == "core id":
                        core = value.strip()
                    elif not key and core:
                        pairs.add((physical, core))
                        physical = core = ""
                if core:
                    pairs.add((physical, core))
            if pairs:
                return len(pairs)
        except OSError:
            pass
    elif system == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.physicalcpu"], capture_output=True, text=True, timeout=2
            )
            return max(1, int(out.stdout.strip()))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return max(1, os.cpu_count() or 1)
