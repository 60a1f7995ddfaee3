"""Typed reads of a model's metadata files (genai_config.json, config.json, ...).

A model folder is input like any other: a non-numeric ``context_length`` must be an
InvalidModelFile naming the file, the key and the type expected, not a ValueError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InvalidModelFile

__all__ = ["int_list_member", "int_member", "member"]


def member(data: Any, dotted: str, kind: type | tuple[type, ...], path: Path, default: Any) -> Any:
    """``data["a"]["b"]`` for ``dotted="a.b"``; missing or null gives ``default``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value: Any = data
    keys = dotted.split(".")
    for index, key in enumerate(keys):
        if not isinstance(value, dict):
            parent = ".".join(keys[:index]) or "the top level"
            raise InvalidModelFile(
                f"{path}: {parent} must be a JSON object, not {_type_name(value)}; "
                "the file is damaged: rebuild or download the model again"
            )
        value = value.get(key)
        if value is None:
            return default
    is_bool = isinstance(value, bool) and bool not in kinds  # JSON true is not the number 1
    if is_bool or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise InvalidModelFile(
            f"{path}: {dotted} must be {_article(names)} {names}, not {value!r}; "
            "the file is damaged: rebuild or download the model again"
        )
    return value


def int_member(data: Any, dotted: str, path: Path, default: int = 0) -> int:
    """A non-negative integer member."""
    value = member(data, dotted, int, path, default)
    if value < 0:
        raise InvalidModelFile(f"{path}: {dotted} must be >= 0, not {value}")
    return int(value)


def int_list_member(data: Any, dotted: str, path: Path) -> list[int]:
    """A member that holds one integer or a list of them (token ids)."""
    value = member(data, dotted, (int, list), path, [])
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise InvalidModelFile(f"{path}: {dotted} must hold integers, not {value!r}")
    return [int(v) for v in values]


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"
