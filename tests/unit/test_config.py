from __future__ import annotations

from pathlib import Path

import pytest

from slmkit.config import DEFAULT_MODEL, load_settings
from slmkit.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SLMKIT_MODEL",
        "SLMKIT_BACKEND",
        "SLMKIT_CONFIG",
        "SLMKIT_MAX_TOKENS",
        "SLMKIT_TEMPERATURE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.model == DEFAULT_MODEL and settings.backend == "auto" and settings.params == {}


def test_file_then_env_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "slmkit.toml").write_text(
        'model = "file-model"\nbackend = "onnx"\n[params]\nmax_tokens = 10\ntemperature = 0.5\n'
        "[backends.llamacpp]\nn_threads = 3\n"
    )
    settings = load_settings()
    assert (settings.model, settings.backend) == ("file-model", "onnx")
    assert settings.params == {"max_tokens": 10, "temperature": 0.5}
    assert settings.options_for("llamacpp") == {"n_threads": 3}

    monkeypatch.setenv("SLMKIT_BACKEND", "llamacpp")
    monkeypatch.setenv("SLMKIT_MAX_TOKENS", "20")
    settings = load_settings()
    assert settings.backend == "llamacpp" and settings.params["max_tokens"] == 20
    assert settings.params["temperature"] == 0.5

    settings = load_settings(model="arg-model", backend="openai", params={"max_tokens": 30})
    assert (settings.model, settings.backend, settings.params["max_tokens"]) == (
        "arg-model",
        "openai",
        30,
    )


def test_pyproject_tool_section_is_read_from_a_parent_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.slmkit]\nbackend = "mlx"\n'
    )
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert load_settings().backend == "mlx"


def test_unknown_key_in_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "slmkit.toml").write_text('modle = "typo"\n')
    with pytest.raises(ConfigError, match="unknown key.*modle"):
        load_settings()


def test_bad_env_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLMKIT_MAX_TOKENS", "lots")
    with pytest.raises(ConfigError, match="SLMKIT_MAX_TOKENS"):
        load_settings()


def test_explicit_config_path_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLMKIT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "slmkit.toml").write_text("model = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings()
