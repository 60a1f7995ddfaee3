"""Bounded look-ups inside a model folder: never a walk of a whole tree.

``load("~/.cache", backend="onnx")`` used to walk everything below and load whatever
came first. A search here looks at most ``depth`` levels down and at most
``MAX_ENTRIES`` entries; past that the user is asked for the model's own folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import ModelNotFound

__all__ = ["MAX_ENTRIES", "find_within"]

#: Entries looked at in one search: a model folder or hub snapshot holds a few dozen.
MAX_ENTRIES = 2_000


def find_within(root: Path, matches: Callable[[Path], bool], depth: int, what: str) -> list[Path]:
    """Paths below ``root`` (``depth`` levels at most, hidden names skipped) that match."""
    found: list[Path] = []
    level, seen = [root], 0
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise ModelNotFound(
                        f"{what} holds more than {MAX_ENTRIES} entries within {depth} levels: "
                        "it is not a model folder; pass the model's own folder or file"
                    )
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if matches(path):
                    found.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    below.append(path)
        level = below
    return found
