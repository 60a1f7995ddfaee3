"""load() and module helpers: model references and clear errors before any runtime work."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import slmkit
from slmkit import errors
from slmkit._api import model_ref


def test_alias_resolves_to_catalog_entry() -> None:
    ref = model_ref("QWEN2.5-Coder-0.5B-Instruct")
    assert ref.spec is not None and ref.spec.alias == "qwen2.5-coder-0.5b-instruct"
    assert model_ref("default").spec is ref.spec


def test_local_path_resolves_to_an_absolute_path(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert model_ref(str(model)).path == model.resolve()


def test_missing_model_path_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelNotFound, match="does not exist"):
        slmkit.load(str(tmp_path / "missing.gguf"), backend="llamacpp")


def test_hub_id_is_passed_through() -> None:
    ref = model_ref("some-org/some-model")
    assert ref.spec is None and ref.path is None and ref.name == "some-org/some-model"


needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama.cpp extra not installed"
)


@needs_llama
def test_text_file_named_gguf_is_refused_before_llama_cpp_sees_it(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("this is a text file, not a model\n" * 4)
    with pytest.raises(errors.InvalidModelFile, match="magic"):
        slmkit.load(str(fake), backend="llamacpp")


@needs_llama
def test_truncated_real_gguf_is_refused(tmp_path: Path) -> None:
    from slmkit.catalog import lookup
    from slmkit.catalog.offline import assemble

    try:
        source = assemble(lookup("gemma-3-270m").packaged)  # type: ignore[union-attr,arg-type]
    except errors.ModelNotFound as exc:
        pytest.skip(f"test model package not installed: {exc}")
    cut = tmp_path / "cut.gguf"
    with source.open("rb") as handle:
        cut.write_bytes(handle.read(source.stat().st_size // 2))
    with pytest.raises(errors.InvalidModelFile, match="truncated"):
        slmkit.load(str(cut), backend="llamacpp")


def test_backend_without_its_extra_names_the_install_command() -> None:
    """Run in a subprocess where llama_cpp cannot be imported."""
    code = (
        "import sys, importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n.startswith('llama_cpp') else real(n, *a)\n"
        "import slmkit\n"
        "try:\n"
        "    slmkit.load(backend='llamacpp')\n"
        "except slmkit.errors.BackendNotInstalled as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 'pip install "slmkit[llamacpp]"' in out.stdout, out.stderr


def test_import_loads_no_runtime_and_no_heavy_package() -> None:
    code = (
        "import sys, slmkit\n"
        "heavy = ['torch', 'transformers', 'llama_cpp', 'onnxruntime_genai', 'openvino', 'mlx',"
        " 'openai', 'azure', 'httpx', 'numpy', 'pydantic', 'jinja2', 'typer', 'rich', 'asyncio']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
