"""Test sessions: `nox` runs them all (this is what CI runs); `nox -s NAME` runs one.

- lint, typecheck: ruff and mypy.
- tests-3.10 .. tests-3.13: the core with NO extras, proving every extra is optional.
- one session per backend extra, running that backend's tests and the contract suite
  on the real offline models.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = False

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
MAIN_PYTHON = "3.11"
#: The CPU build of torch that pip finds through its configured find-links here.
TORCH = "torch==2.13.0"


@nox.session(python=MAIN_PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "noxfile.py", "examples", "benchmarks")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py", "examples", "benchmarks")


@nox.session(python=MAIN_PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[server]", "mypy>=1.10")  # slmkit.server is typed against FastAPI
    session.run("mypy", "src")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The core alone: no backend extra installed."""
    session.install("-e", ".", "pytest>=8")
    session.run("pytest", "tests/unit", "-q", *session.posargs)


def contract(session: nox.Session, backend: str, *tests: str) -> None:
    session.run(
        "pytest",
        "tests/contract",
        *tests,
        "-q",
        *session.posargs,
        env={"SLMKIT_CONTRACT_BACKENDS": backend},
    )


@nox.session(python=MAIN_PYTHON)
def llamacpp(session: nox.Session) -> None:
    session.install("-e", ".[llamacpp,default-model,test-models]", "pytest>=8")
    contract(
        session,
        "llamacpp",
        "tests/unit",
        "tests/backends/test_llamacpp.py",
        "tests/backends/test_examples.py",
    )


@nox.session(python=MAIN_PYTHON)
def transformers(session: nox.Session) -> None:
    """transformers: converts the offline GGUFs to checkpoints (cached) and runs them."""
    session.install(TORCH)  # first, so no resolver picks a CUDA torch
    session.install("-e", ".[transformers,llamacpp,default-model,test-models]", "pytest>=8")
    contract(session, "transformers", "tests/backends/test_transformers.py")


@nox.session(python=MAIN_PYTHON)
def onnx(session: nox.Session) -> None:
    """Converter and runtime: makes the ONNX artifacts (cached) and runs them."""
    session.install(TORCH)  # first, so no resolver ever pulls a CUDA build
    session.install("-e", ".[onnx-convert,llamacpp,default-model,test-models]", "pytest>=8")
    contract(session, "onnx", "tests/backends/test_onnx.py", "tests/unit/test_auto.py")


@nox.session(python=MAIN_PYTHON)
def onnx_runtime_only(session: nox.Session) -> None:
    """`pip install "slmkit[onnx]"` alone (no torch, no transformers) runs the cached artifacts."""
    session.install("-e", ".[onnx,llamacpp,default-model,test-models]", "pytest>=8")
    session.run("python", "-c", "import importlib.util as u; assert not u.find_spec('torch')")
    contract(session, "onnx", "tests/backends/test_onnx.py")


@nox.session(python=MAIN_PYTHON)
def openvino(session: nox.Session) -> None:
    """OpenVINO GenAI. Converting the offline GGUFs needs convert --to hf (transformers);
    convert --to openvino builds its own exporter virtualenv under the slmkit cache."""
    session.install(TORCH)  # first, so nothing pulls a CUDA torch
    session.install(
        "-e", ".[openvino,transformers,llamacpp,default-model,test-models]", "pytest>=8"
    )
    contract(session, "openvino", "tests/backends/test_openvino.py")


@nox.session(python=MAIN_PYTHON)
def hosted(session: nox.Session) -> None:
    """openai, azure, nim, github against llama-cpp-python's server and a fault server,
    all on 127.0.0.1 (tests/hosted refuses any other connection)."""
    session.install(
        "-e", ".[hosted,llamacpp,default-model]", "llama-cpp-python[server]", "pytest>=8"
    )
    session.run(
        "pytest", "tests/hosted", "tests/backends/test_hosted_retry.py", "-q", *session.posargs
    )


@nox.session(python=MAIN_PYTHON)
def server(session: nox.Session) -> None:
    """`slmkit serve` as a real uvicorn process on 127.0.0.1, called by the official openai
    and azure-ai-inference clients and by slmkit's own openai backend, on the offline models."""
    session.install(
        "-e", ".[server,hosted,llamacpp,default-model,test-models]", "httpx", "pytest>=8",
        "pytest-timeout",
    )  # fmt: skip
    session.run("pytest", "tests/server", "-q", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def mlx(session: nox.Session) -> None:
    """MLX (the Linux CPU build here). `--to mlx` starts from `--to hf`: transformers too."""
    session.install(TORCH)  # first, so no resolver picks a CUDA torch
    session.install("-e", ".[mlx,transformers,llamacpp,default-model,test-models]", "pytest>=8")
    contract(session, "mlx", "tests/backends/test_mlx.py")
