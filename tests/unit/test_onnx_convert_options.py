"""`convert --to onnx` options (--accuracy-level, --prefill): part of the artifact's cache
key, checked early."""

from __future__ import annotations

import pytest

from slmkit.convert import onnx
from slmkit.errors import InvalidRequest


def test_the_cpu_default_is_int8_activations_and_the_cache_key_says_so() -> None:
    assert onnx.variant(precision="int4", execution_provider="cpu") == "int4-cpu-acc4-prefill8"
    assert onnx.variant(execution_provider="cpu", accuracy_level=4, prefill="none") == (
        "int4-cpu-acc4"
    )


def test_another_accuracy_level_is_another_artifact() -> None:
    assert onnx.variant(execution_provider="cpu", accuracy_level=1) == "int4-cpu-acc1-prefill8"
    assert onnx.variant(execution_provider="cuda", accuracy_level=4) == "int4-cuda-acc4"
    assert onnx.variant(execution_provider="cuda") == "int4-cuda"
    assert onnx.variant(precision="fp32", execution_provider="cpu") == "fp32-cpu"


@pytest.mark.parametrize("level", [0, 5, "int8"])
def test_an_unknown_accuracy_level_names_the_valid_ones(level: object) -> None:
    with pytest.raises(InvalidRequest, match="4 \\(int8 activations\\)"):
        onnx.variant(execution_provider="cpu", accuracy_level=level)


def test_the_int8_prompt_model_is_for_int4_on_cpu_only() -> None:
    assert onnx.variant(execution_provider="cpu", prefill="int8") == "int4-cpu-acc4-prefill8"
    with pytest.raises(InvalidRequest, match="--prefill int8 is for int4 on cpu"):
        onnx.variant(execution_provider="cuda", prefill="int8")
    with pytest.raises(InvalidRequest, match="--prefill int8 is for int4 on cpu"):
        onnx.variant(precision="fp32", execution_provider="cpu", prefill="int8")
    with pytest.raises(InvalidRequest, match="int8, none"):
        onnx.variant(execution_provider="cpu", prefill="int4")
