"""Recorded machines (tests/unit/hardware/recorded/*) as probe Hosts.

Each folder holds one machine's raw outputs, named in its ``machine.json`` (which machine,
which command) and in the folder's README. :func:`recorded_host` lays its files out under
a scratch root the readers take for ``/``; the macOS and Windows answers are served from
the recorded text, so every platform's reader runs on any platform.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from slmkit.hostfacts import Host

RECORDED = Path(__file__).parent / "hardware" / "recorded"
MACHINES = sorted(p.name for p in RECORDED.iterdir() if (p / "machine.json").is_file())


def machine_info(name: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((RECORDED / name / "machine.json").read_text("utf-8"))
    return info


def recorded_host(name: str, root: Path) -> Host:
    """The Host of recorded machine ``name``, its /proc and /sys laid out under ``root``."""
    source = RECORDED / name
    info = machine_info(name)
    if (source / "proc").is_dir():
        shutil.copytree(source / "proc", root / "proc")
    sysfs = source / "sysfs.txt"
    if sysfs.is_file():
        _lay_out_listing(sysfs.read_text("utf-8"), root)
    sysctl = _sysctl_values(source / "sysctl.txt")
    smi = source / "nvidia-smi.csv"
    smi_text = smi.read_text("utf-8") if smi.is_file() else None
    windows = info.get("windows", {})
    features = windows.get("IsProcessorFeaturePresent", {})
    memory = windows.get("GlobalMemoryStatusEx", {})
    system = info["platform"]
    return Host(
        system=system["system"],
        machine=system["machine"],
        release=system["release"],
        processor=lambda: str(system["processor"]),
        cpu_count=info["cpu_count"],
        sysctl=lambda key: sysctl.get(key, ""),
        nvidia_smi=lambda: smi_text,
        windows_feature=lambda code: bool(features.get(str(code), 0)),
        windows_memory=lambda: (memory.get("ullTotalPhys"), memory.get("ullAvailPhys")),
        root=root,
        environ={"SYSTEMROOT": str(source)} if system["system"] == "Windows" else {},
    )


def _sysctl_values(path: Path) -> dict[str, str]:
    """``sysctl -a`` lines ("name: value") as ``sysctl -n name`` would answer them."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text("utf-8").splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            values[key] = value.strip()
    return values


def _lay_out_listing(listing: str, root: Path) -> None:
    """Recreate ``grep -H . FILES`` lines (path:value), ``path -> target`` symlinks
    (``readlink -f``) and bare paths (``ls``) under ``root``."""
    for line in listing.splitlines():
        if " -> " in line:
            link, target = (root / part.strip().lstrip("/") for part in line.split(" -> "))
            target.mkdir(parents=True, exist_ok=True)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(target, link, target_is_directory=True)
            except OSError as exc:  # Windows without Developer Mode or admin rights
                pytest.skip(f"sysfs driver links need symlinks, which this OS refused: {exc}")
        elif line.strip():
            path, _, value = line.partition(":")
            file = root / path.strip().lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(value + "\n" if value else "", "utf-8")
