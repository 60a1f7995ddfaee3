"""The checks every conversion target runs on its ``--option`` values."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..errors import InvalidRequest

__all__ = ["refuse_unknown"]


def refuse_unknown(options: Mapping[str, Any], allowed: Collection[str], usage: str) -> None:
    """InvalidRequest naming the options a target does not take; ``usage`` says what it does,
    e.g. ``"convert --to mlx takes only --bits (4, 8 or 16)"``."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        raise InvalidRequest(f"{usage}; got {flags}", field=unknown[0])
