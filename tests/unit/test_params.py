from __future__ import annotations

import pytest

from slmkit.errors import InvalidRequest
from slmkit.params import GenerationParams, parse_params


def test_defaults_are_greedy() -> None:
    params = parse_params()
    assert params.greedy and params.max_tokens == 256 and params.stop == []


def test_overrides_merge_into_a_base() -> None:
    base = GenerationParams(max_tokens=10, temperature=0.5)
    merged = parse_params(base, temperature=0.0)
    assert merged.max_tokens == 10 and merged.temperature == 0.0


def test_stop_accepts_a_string() -> None:
    assert parse_params(stop="###").stop == ["###"]


@pytest.mark.parametrize(
    ("overrides", "field", "hint"),
    [
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": -1}, "max_tokens", ">= 1"),
        ({"max_tokens": "many"}, "max_tokens", "integer"),
        ({"temperature": -1}, "temperature", "between 0"),
        ({"temperature": 3}, "temperature", "between 0"),
        ({"top_p": 1.5}, "top_p", "(0, 1]"),
        ({"top_p": 0}, "top_p", "(0, 1]"),
        ({"top_k": -2}, "top_k", ">= 0"),
        ({"seed": -5}, "seed", "2**32"),
        ({"repetition_penalty": 0}, "repetition_penalty", "> 0"),
        ({"stop": [""]}, "stop", "non-empty"),
        ({"stop": ["x"] * 17}, "stop", "list"),
        ({"stop": 5}, "stop", "string"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(
    overrides: dict[str, object], field: str, hint: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_params(**overrides)
    assert info.value.field == field
    assert field in str(info.value) and hint in str(info.value)


def test_unknown_parameter_is_an_error_listing_known_ones() -> None:
    with pytest.raises(
        InvalidRequest, match="unknown generation parameter 'max_new_tokens'"
    ) as info:
        parse_params(max_new_tokens=5)
    assert "max_tokens" in str(info.value)
    assert info.value.field == "max_new_tokens"
