"""Step names from a running conversion, for whoever is watching (the CLI's spinner).

A target calls :func:`step` before each slow part; nothing is shown unless a caller
installed a listener with :func:`reporting`. Kept apart from the targets so each of
them reports the same way and none of them imports rich.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["reporting", "step"]

_listener: ContextVar[Callable[[str], None] | None] = ContextVar(
    "slmkit_convert_progress", default=None
)


def step(name: str) -> None:
    """Announce the step that starts now (e.g. "reading GGUF tensors")."""
    listener = _listener.get()
    if listener is not None:
        listener(name)


@contextlib.contextmanager
def reporting(listener: Callable[[str], None]) -> Iterator[None]:
    """Send every :func:`step` inside this block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
