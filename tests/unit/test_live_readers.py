"""The probe's live contact with a machine: the commands it runs and the OS calls it
makes. On POSIX the commands are put on PATH as scripts that answer with a recorded
output; the Windows and macOS calls themselves run where CI has those machines."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from slmkit.hostfacts import NVIDIA_QUERY, nvidia_smi_gpus, this_machine

RECORDED = Path(__file__).parent / "hardware" / "recorded"
posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="stands in a POSIX command with a shell script"
)


def put_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> None:
    command = tmp_path / name
    command.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


@posix_only
def test_nvidia_smi_is_asked_the_query_its_parser_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = RECORDED / "linux-x86_64-xeon-8480-h100-vm" / "nvidia-smi.csv"
    wanted = " ".join(NVIDIA_QUERY)
    put_on_path(
        tmp_path,
        monkeypatch,
        "nvidia-smi",
        f'[ "$*" = "{wanted}" ] && cat "{csv}" || echo "unexpected arguments: $*" >&2',
    )
    answer = this_machine().nvidia_smi()
    assert answer == csv.read_text("utf-8")
    assert [g.name for g in nvidia_smi_gpus(answer)] == ["NVIDIA H100 PCIe"]


@posix_only
def test_a_failing_nvidia_smi_answers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_on_path(tmp_path, monkeypatch, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert this_machine().nvidia_smi() == ""


def test_no_nvidia_smi_on_path_is_told_apart_from_a_failing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert this_machine().nvidia_smi() is None


@posix_only
def test_sysctl_is_asked_for_one_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    put_on_path(
        tmp_path,
        monkeypatch,
        "sysctl",
        '[ "$1" = "-n" ] && [ "$2" = "hw.memsize" ] && echo 38654705664',
    )
    assert this_machine().sysctl("hw.memsize") == "38654705664"
    assert this_machine().sysctl("hw.nosuchkey") == ""


@pytest.mark.skipif(sys.platform != "win32", reason="kernel32 exists on Windows only")
def test_windows_kernel32_answers_memory_and_feature_bits() -> None:
    host = this_machine()
    total, available = host.windows_memory()
    assert total and available and 0 < available <= total
    assert host.windows_feature(39) in (True, False)  # PF_AVX_INSTRUCTIONS_AVAILABLE


@pytest.mark.skipif(sys.platform != "darwin", reason="the live sysctl keys exist on macOS only")
def test_macos_sysctl_answers_the_keys_the_probe_reads() -> None:
    host = this_machine()
    assert host.sysctl("machdep.cpu.brand_string")
    assert host.sysctl("hw.memsize").isdigit()
    assert host.sysctl("hw.physicalcpu").isdigit()
