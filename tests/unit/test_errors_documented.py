"""Every error says what to do: the docs' troubleshooting page is built from these."""

from __future__ import annotations

import re

import pytest

from slmkit import errors

CLASSES = [getattr(errors, name) for name in errors.__all__]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_docstring_says_what_happened_and_the_fix(cls: type) -> None:
    summary, *rest = (cls.__doc__ or "").split("\n\n")
    assert summary.strip(), f"{cls.__name__}: first line says what happened"
    assert any(p.strip().startswith("Fix: ") for p in rest), f"{cls.__name__}: add a Fix: paragraph"


def test_the_tree_at_the_top_of_errors_names_every_class() -> None:
    tree = re.findall(r"^ +(?:[├└│ ]─* ?)*(\w+)", (errors.__doc__ or ""), re.MULTILINE)
    assert set(tree) == set(errors.__all__)


def test_every_error_derives_from_the_root() -> None:
    assert all(issubclass(cls, errors.SlmkitError) for cls in CLASSES)
