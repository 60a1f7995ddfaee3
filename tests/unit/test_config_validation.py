"""Every config source and model metadata file: typed errors naming file, key and type.

The hypothesis tests feed arbitrary TOML documents, environment values and JSON
metadata; the only exceptions allowed out are ConfigError / InvalidModelFile.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmkit import errors
from slmkit._metadata import int_member
from slmkit.backends import onnx, openvino
from slmkit.backends.base import ModelRef
from slmkit.config import load_settings

pytestmark = pytest.mark.timeout(120)

ENV = (
    "SLMKIT_MODEL",
    "SLMKIT_BACKEND",
    "SLMKIT_CONFIG",
    "SLMKIT_MAX_TOKENS",
    "SLMKIT_TEMPERATURE",
    "SLMKIT_TOP_P",
    "SLMKIT_TOP_K",
    "SLMKIT_SEED",
    "SLMKIT_REPETITION_PENALTY",
    "SLMKIT_STOP",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


# -- cases seen in the field --------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ("[backends]\nonnx = 3\n", "backends.onnx", "table"),
        ("model = 3\n", "model", "string"),
        ('backend = ""\n', "backend", "string"),
        ("params = 1\n", "params", "table"),
        ('[params]\nmax_tokens = "many"\n', "params.max_tokens", "integer"),
        ("[params]\ntemperature = -1.0\n", "params.temperature", "between 0"),
        ("[params]\nwarp_speed = 9\n", "params.warp_speed", "known parameters"),
        ('[params]\nstop = ["a\\u0000b"]\n', "params.stop[0]", "NUL"),
    ],
)
def test_a_bad_slmkit_toml_value_names_file_key_and_type(
    tmp_path: Path, toml: str, key: str, expected: str
) -> None:
    (tmp_path / "slmkit.toml").write_text(toml)
    with pytest.raises(errors.ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert str(tmp_path / "slmkit.toml") in message and key in message and expected in message


@pytest.mark.parametrize(
    ("toml", "key"),
    [("tool = 3\n", "tool"), ("[tool]\nslmkit = 3\n", "tool.slmkit")],
)
def test_a_bad_pyproject_section_is_a_config_error(tmp_path: Path, toml: str, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(errors.ConfigError, match=f"pyproject.toml: {key} must be a table"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLMKIT_SEED", "-1"),
        ("SLMKIT_TOP_P", "nan"),
        ("SLMKIT_MAX_TOKENS", "ten"),
        ("SLMKIT_TEMPERATURE", "inf"),
        ("SLMKIT_STOP", "\udcff"),
    ],
)
def test_a_bad_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(errors.ConfigError, match=name):
        load_settings()


def test_non_numeric_context_length_in_genai_config_is_an_invalid_model_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "genai_config.json"
    with pytest.raises(errors.InvalidModelFile, match=r"model\.context_length must be an int"):
        int_member({"model": {"context_length": "4k"}}, "model.context_length", path)
    with pytest.raises(errors.InvalidModelFile, match="model must be a JSON object"):
        onnx._sliding_window({"model": [1]}, path)


# -- fuzzing --------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = st.one_of(_text, st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans())
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
_keys = st.one_of(
    st.sampled_from(["model", "backend", "params", "backends", "tool", "slmkit"]), _text
)
_param_names = st.sampled_from(
    ["max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "repetition_penalty"]
)
_documents = st.dictionaries(
    _keys,
    st.one_of(
        _values,
        st.dictionaries(_param_names, _values, max_size=4),
        st.dictionaries(st.sampled_from(["onnx", "llamacpp"]), _values, max_size=2),
    ),
    max_size=5,
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(document: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(key)} = {_toml_value(value)}\n" for key, value in document.items())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_documents, as_pyproject=st.booleans())
def test_any_config_file_loads_or_raises_config_error(
    tmp_path: Path, document: dict[str, Any], as_pyproject: bool
) -> None:
    for name in ("slmkit.toml", "pyproject.toml"):
        (tmp_path / name).unlink(missing_ok=True)
    text = _toml({"tool": {"slmkit": document}} if as_pyproject else document)
    (tmp_path / ("pyproject.toml" if as_pyproject else "slmkit.toml")).write_text(text)
    try:
        loaded = load_settings()
    except errors.ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert isinstance(loaded.model, str) and loaded.model
    assert all(isinstance(options, dict) for options in loaded.backend_options.values())


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(
        st.sampled_from([n for n in ENV if n != "SLMKIT_CONFIG"]),
        st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12
        ),
        max_size=4,
    )
)
def test_any_environment_loads_or_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str]
) -> None:
    with monkeypatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        try:
            load_settings()
        except errors.ConfigError as exc:
            assert any(name in str(exc) for name in values)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=10,
)
_genai = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(
            _json,
            st.fixed_dictionaries(
                {},
                optional={
                    "context_length": _json,
                    "vocab_size": _json,
                    "eos_token_id": _json,
                    "decoder": st.one_of(
                        _json,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "sliding_window": st.one_of(
                                    _json,
                                    st.fixed_dictionaries({}, optional={"window_size": _json}),
                                )
                            },
                        ),
                    ),
                },
            ),
        )
    },
)


@settings(max_examples=300, deadline=None)
@given(genai=_genai)
def test_any_genai_config_reads_or_raises_invalid_model_file(genai: dict[str, Any]) -> None:
    path = Path("genai_config.json")
    try:
        values = [
            int_member(genai, "model.context_length", path),
            int_member(genai, "model.vocab_size", path),
            onnx._sliding_window(genai, path),
            *onnx._eos_ids(genai, None, path),
        ]
    except errors.InvalidModelFile as exc:
        assert "genai_config.json" in str(exc)
        return
    assert all(isinstance(v, int) and v >= 0 for v in values[:3])


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    config=st.one_of(_json, st.fixed_dictionaries({}, optional={"max_position_embeddings": _json}))
)
def test_any_openvino_config_json_reads_or_raises_invalid_model_file(
    tmp_path: Path, config: Any
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    options = openvino.OpenVINOOptions()
    try:
        context = openvino._context_length(tmp_path, ModelRef("m"), options)
    except errors.InvalidModelFile as exc:
        assert "config.json" in str(exc)
        return
    assert context > 0


def test_an_openvino_context_length_past_the_models_positions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    options = openvino.OpenVINOOptions(context_length=4096)
    with pytest.raises(errors.InvalidRequest, match="context_length <= 2048"):
        openvino._context_length(tmp_path, ModelRef("m"), options)
