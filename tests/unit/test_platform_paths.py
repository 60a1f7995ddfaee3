"""Paths that differ by platform: the OpenVINO exporter's virtualenv layout (bin/ vs
Scripts\\*.exe, from recorded listings of real environments), and slmkit's own files
under a user folder with spaces and non-ASCII letters (C:\\Users\\José Müller\\...)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path, PureWindowsPath

import pytest

from slmkit.convert import Source
from slmkit.convert import openvino as ov_export
from slmkit.probe import read_report
from slmkit.ranking import load_measurement, store_measurement

from .recorded_machines import recorded_host

TOOL_OUTPUTS = Path(__file__).parent / "hardware" / "tool-outputs"
USER_HOME = ("Users", "José Müller", "AppData", "Local", "slmkit cache")


def lay_out_venv(listing: str, env: Path) -> None:
    """Recreate a recorded directory listing (relative paths, either separator) in ``env``;
    an entry that is the parent of another is a folder, the rest are files."""
    entries = [PureWindowsPath(line.strip()).as_posix() for line in listing.splitlines()]
    folders = {str(parent) for e in entries for parent in Path(e).parents}
    for entry in filter(None, entries):
        path = env / entry
        if entry in folders:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


@pytest.mark.parametrize(
    ("listing", "os_name"),
    [("venv-windows-openvino-export.txt", "nt"), ("venv-linux-openvino-export.txt", "posix")],
)
def test_exporter_finds_python_and_its_console_scripts_in_a_recorded_venv(
    listing: str, os_name: str, tmp_path: Path
) -> None:
    env = tmp_path.joinpath(*USER_HOME, "envs", "openvino-export")
    lay_out_venv((TOOL_OUTPUTS / listing).read_text("utf-8"), env)
    python = ov_export._python_in(env, os_name)
    assert python.is_file()
    for script in ("optimum-cli", "convert_tokenizer"):
        assert ov_export.script_beside(python, script, os_name).is_file(), script


def test_exporter_env_lives_under_the_cache_dir_of_a_user_with_a_non_ascii_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path.joinpath(*USER_HOME)
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(cache))
    assert ov_export.exporter_env_dir() == cache / "envs" / "openvino-export"


@pytest.mark.skipif(
    sys.platform == "win32",
    reason="a console-script .exe cannot be written by a test; the layout test covers Windows",
)
def test_openvino_export_runs_with_spaces_and_non_ascii_in_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real exporter command line, run through a stand-in optimum-cli that writes the
    IR files an export writes and records the arguments it got."""
    home = tmp_path.joinpath(*USER_HOME)
    bin_dir = home / "exporter env" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    argv_log = home / "argv.txt"
    cli = bin_dir / "optimum-cli"
    cli.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        f"pathlib.Path({str(argv_log)!r}).write_text('\\n'.join(sys.argv[1:]), 'utf-8')\n"
        "out = pathlib.Path(sys.argv[-1]); out.mkdir(parents=True, exist_ok=True)\n"
        "for name in ('model', 'tokenizer', 'detokenizer'):\n"
        "    (out / f'openvino_{name}.xml').write_text('<net/>')\n",
        encoding="utf-8",
    )
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    checkpoint = home / "modèles" / "gemma 3 270m"
    checkpoint.mkdir(parents=True)
    (checkpoint / "chat_template.jinja").write_text("{{ messages }}", "utf-8")
    monkeypatch.setenv("SLMKIT_OPENVINO_EXPORT_PYTHON", str(bin_dir / "python"))
    out = home / "sortie IR"

    ov_export.build(Source("gemma", "gemma", None, checkpoint), out, weight_format="int8")

    argv = argv_log.read_text("utf-8").splitlines()
    assert argv[argv.index("--model") + 1] == str(checkpoint)
    assert argv[argv.index("--weight-format") + 1] == "int8"
    assert argv[-1] == str(out)
    assert (out / "chat_template.jinja").read_text("utf-8") == "{{ messages }}"


def test_autotune_measurement_round_trips_under_a_non_ascii_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLMKIT_CACHE_DIR", str(tmp_path.joinpath(*USER_HOME)))
    report = read_report(recorded_host("windows-x86_64-core-ultra-7-155h", tmp_path / "root"))
    results = [{"backend": "onnx", "versions": {"slmkit": "0"}, "decode_tok_s": 41.5}]
    path = store_measurement(report, "Modèle local: gemma 3", results)
    assert "José Müller" in os.fspath(path)
    stored = load_measurement(report, "Modèle local: gemma 3")
    assert stored is not None and stored["results"] == results
