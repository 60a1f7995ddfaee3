"""``--to openvino``: a transformers checkpoint -> OpenVINO IR with optimum-intel.

The exporter (optimum-intel + nncf + openvino-tokenizers) pins transformers, tokenizers
and torch to versions that clash with the rest of slmkit: installed next to
transformers 5.2x it downgrades transformers and tokenizers, pulls a CUDA torch, and its
Gemma 3 export refuses transformers newer than 5.0. So the export runs in its own
virtualenv, created once under the slmkit cache (``envs/openvino-export``) with pinned
versions (CPU torch first, so no CUDA torch or nvidia-* package comes in), and is called
as a subprocess: ``optimum-cli export openvino``, which also writes the tokenizer and
detokenizer IRs through openvino-tokenizers. The IR it makes runs with openvino-genai in
slmkit's own environment.

``SLMKIT_OPENVINO_EXPORT_PYTHON`` names the python of an existing exporter environment
to use instead; ``SLMKIT_TORCH_INDEX_URL`` is an index holding CPU torch wheels
(https://download.pytorch.org/whl/cpu) where plain pip would pick the CUDA build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from ..errors import ConversionError, InvalidRequest
from ..paths import cache_dir
from . import Source
from .progress import step

NAME = "openvino"
# Nothing beyond slmkit's core is needed in this environment: the exporter lives in its own.
PACKAGES: tuple[tuple[str, str], ...] = ()
EXTRA = "openvino-export"

WEIGHT_FORMATS = ("int4", "int8", "fp16")
DEFAULT_WEIGHT_FORMAT = "int4"

#: The exporter environment. torch is installed alone first (CPU build); the rest is
#: resolved with torch held by a constraint. torchvision is removed afterwards: nothing
#: in a text export needs it and the PyPI build does not match the CPU torch.
TORCH = "torch==2.13.0"
EXPORTER_REQUIREMENTS = (
    "optimum-intel[openvino]==2.2.0",
    "transformers==5.0.0",
    "openvino==2026.4.1",
    "openvino-tokenizers==2026.4.1.0",
    "nncf==3.4.0",
)
ENV_STAMP = "slmkit-env.json"
EXPORT_TIMEOUT_S = 3600
INSTALL_TIMEOUT_S = 1800


def variant(weight_format: str = DEFAULT_WEIGHT_FORMAT, **options: Any) -> str:
    """The cache-key suffix: the weight format."""
    if options:
        name = next(iter(options))
        raise InvalidRequest(
            f"convert --to openvino has no option {name!r}; its option: weight_format",
            field=name,
        )
    fmt = str(weight_format).strip().lower()
    if fmt not in WEIGHT_FORMATS:
        raise InvalidRequest(
            f"weight_format={weight_format!r} is not one OpenVINO export supports here; "
            f"use one of: {', '.join(WEIGHT_FORMATS)}",
            field="weight_format",
        )
    return fmt


def build(source: Source, out: Path, weight_format: str = DEFAULT_WEIGHT_FORMAT) -> None:
    """Export ``source`` into ``out`` as an IR folder with tokenizer and detokenizer."""
    fmt = variant(weight_format)
    checkpoint = _checkpoint(source)
    python = exporter_python()
    step(f"exporting to OpenVINO IR ({fmt}) with optimum-cli, in the exporter environment")
    cli = script_beside(python, "optimum-cli")
    command = [
        str(cli),
        "export",
        "openvino",
        "--model",
        str(checkpoint),
        "--task",
        "text-generation-with-past",
        "--weight-format",
        fmt,
        str(out),
    ]
    log = _run(command, "optimum-cli export openvino", EXPORT_TIMEOUT_S, python)
    if not (out / "openvino_tokenizer.xml").is_file():
        # optimum-cli skips the tokenizer quietly when it cannot convert it; try directly
        # so the failure says why.
        step("converting the tokenizer with openvino-tokenizers")
        log += _run(
            [
                str(script_beside(python, "convert_tokenizer")),
                str(checkpoint),
                "--with-detokenizer",
                "-o",
                str(out),
            ],
            "convert_tokenizer",
            600,
            python,
        )
    for name in ("openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml"):
        if not (out / name).is_file():
            raise ConversionError(
                f"the OpenVINO export of {source.name} wrote no {name}; run "
                f"`{cli} export openvino --model {checkpoint} OUT` by hand to see why. "
                "The exporter said:\n" + _tail(log)
            )
    _copy_template(checkpoint, out)


def _checkpoint(source: Source) -> Path:
    """The transformers checkpoint to export: the source folder, or the cached hf target."""
    if source.folder is not None:
        return source.folder
    from . import convert

    step("making the transformers checkpoint (convert --to hf)")
    return convert(source.name, to="hf")


def _copy_template(checkpoint: Path, out: Path) -> None:
    """Keep the checkpoint's chat template next to the IR, where the backend looks first."""
    template = checkpoint / "chat_template.jinja"
    if template.is_file() and not (out / "chat_template.jinja").exists():
        shutil.copyfile(template, out / "chat_template.jinja")


# -- the exporter environment ---------------------------------------------------------


def exporter_env_dir() -> Path:
    return cache_dir("envs", "openvino-export")


def exporter_python() -> Path:
    """The exporter environment's python, creating the environment on first use."""
    override = os.environ.get("SLMKIT_OPENVINO_EXPORT_PYTHON")
    if override:
        python = Path(override).expanduser()
        if not python.is_file():
            raise ConversionError(
                f"SLMKIT_OPENVINO_EXPORT_PYTHON={override} is not a file; point it at the "
                "python of an environment with optimum-intel[openvino], or unset it"
            )
        return python
    env = exporter_env_dir()
    python = _python_in(env)
    if _stamp(env) == _wanted_stamp() and python.is_file():
        return python
    _create_env(env)
    return python


def _python_in(env: Path, os_name: str = os.name) -> Path:
    """A virtualenv's python: bin/python on POSIX, Scripts\\python.exe on Windows."""
    return env / ("Scripts/python.exe" if os_name == "nt" else "bin/python")


def script_beside(python: Path, name: str, os_name: str = os.name) -> Path:
    """A console script installed next to ``python`` (Windows names it ``NAME.exe``)."""
    return python.with_name(f"{name}.exe" if os_name == "nt" else name)


def _wanted_stamp() -> dict[str, Any]:
    return {"torch": TORCH, "requirements": list(EXPORTER_REQUIREMENTS)}


def _stamp(env: Path) -> dict[str, Any] | None:
    try:
        return json.loads((env / ENV_STAMP).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _create_env(env: Path) -> None:
    """Build the exporter virtualenv once (about 1.6 GB; a minute or two from a warm cache).

    It is built in place (a venv's scripts name their own folder) and the stamp file is
    written last, so a half-built environment is rebuilt from scratch next time. A lock
    keeps two conversions from building it at once.
    """
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{env.name}.lock", "w") as lock:
        _wait_for_lock(lock.fileno())
        if _stamp(env) == _wanted_stamp() and _python_in(env).is_file():
            return  # another process built it while we waited
        step(
            f"creating the OpenVINO exporter environment in {env} (once, a few minutes): "
            "optimum-intel needs transformers/torch versions that differ from slmkit's own"
        )
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
        python = _python_in(env)
        torch_index = os.environ.get("SLMKIT_TORCH_INDEX_URL")
        index_args = ["--extra-index-url", torch_index] if torch_index else []
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        _run([*pip, *index_args, TORCH], "pip install torch (CPU)", INSTALL_TIMEOUT_S, python)
        constraints = env / "constraints.txt"
        constraints.write_text(TORCH + "\n")
        _run(
            [*pip, "-c", str(constraints), *EXPORTER_REQUIREMENTS],
            "pip install the OpenVINO exporter",
            INSTALL_TIMEOUT_S,
            python,
        )
        uninstall = [str(python), "-m", "pip", "uninstall", "-y", "torchvision"]
        _run(uninstall, "pip uninstall torchvision", 300, python)
        _refuse_cuda_packages(python)
        (env / ENV_STAMP).write_text(json.dumps(_wanted_stamp(), indent=2))


def _wait_for_lock(fd: int) -> None:
    """Hold an exclusive lock on the open file ``fd``, waiting as long as another holds it."""
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s; the other build takes minutes
                continue
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _refuse_cuda_packages(python: Path) -> None:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    cuda = [line for line in listing.splitlines() if line.lower().startswith("nvidia-")]
    if cuda:
        raise ConversionError(
            "the OpenVINO exporter environment picked up CUDA packages ("
            + ", ".join(cuda[:3])
            + "): set SLMKIT_TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu so pip "
            "finds the CPU torch build, delete the environment and convert again"
        )


def _run(command: list[str], what: str, timeout: int, python: Path) -> str:
    """Run one exporter command; its output, or ConversionError with the output's tail."""
    env = dict(os.environ)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConversionError(f"{what} did not finish within {timeout} s") from exc
    except OSError as exc:
        raise ConversionError(f"could not run {what}: {exc}") from exc
    output = f"{result.stdout}\n{result.stderr}"
    if result.returncode != 0:
        raise ConversionError(
            f"{what} failed (exit {result.returncode}) in the OpenVINO exporter environment "
            f"({python.parent.parent}):\n" + _tail(output)
        )
    return output


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
