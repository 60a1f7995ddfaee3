"""The artifact resolver's one rule for converted models, shared by every backend.

A backend reads one format (``Backend.artifact_format``). When the user names a catalog
alias with an offline GGUF, or a local ``.gguf`` file, and the backend reads another
format, the artifact is made from that GGUF by ``slmkit convert`` and cached under the
user cache dir. The rule is the same on every backend:

1. the cached conversion, if there is one, is used at once;
2. otherwise, for an explicitly named backend, it is converted now, once (progress on
   stderr), unless automatic conversion is off (``SLMKIT_AUTO_CONVERT=0``); with
   ``backend="auto"``, or when it is off, ``ModelNotFound`` names the exact
   ``slmkit convert`` command and ``auto`` falls back to a backend that reads the model
   as it is.

Backends ask here instead of importing the converter; the runtime-specific part (which
file of a folder to load, which variant for which device) stays in the backend's file.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ModelNotFound

__all__ = ["auto_convert_enabled", "cached", "converted", "without_conversion"]

_NO_CONVERSION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "slmkit_no_conversion", default=False
)


def auto_convert_enabled() -> bool:
    """False when ``SLMKIT_AUTO_CONVERT`` is 0/false/no/off, or inside without_conversion()."""
    value = os.environ.get("SLMKIT_AUTO_CONVERT", "1").strip().lower()
    return value not in {"0", "false", "no", "off"} and not _NO_CONVERSION.get()


@contextlib.contextmanager
def without_conversion() -> Iterator[None]:
    """Only cached conversions count here: ``backend="auto"`` tries backends this way, so
    it falls back to one that reads the model as it is instead of converting for minutes."""
    token = _NO_CONVERSION.set(True)
    try:
        yield
    finally:
        _NO_CONVERSION.reset(token)


def cached(model: str, to: str, **options: Any) -> Path | None:
    """The cached ``to``-format conversion of ``model``, or None; never converts."""
    from .convert import cached_artifact

    try:
        return cached_artifact(model, to, **options)
    except ModelNotFound:  # its offline GGUF is not installed: nothing was converted
        return None


def converted(model: str, to: str, backend: str, flags: str = "", **options: Any) -> Path:
    """The ``to``-format artifact of ``model`` (an alias or a .gguf path), by the rule above.

    ``options`` are the converter's options for that target; ``flags`` spells them on the
    command line for the error message.
    """
    from .convert import cached_artifact, convert

    cached = cached_artifact(model, to, **options)
    if cached is not None:
        return cached
    command = f"slmkit convert {model} --to {to}" + (f" {flags}" if flags else "")
    if not auto_convert_enabled():
        raise ModelNotFound(
            f"backend {backend!r} needs {model!r} in {to} format, which is not in the cache "
            f"yet (not converted automatically here): run `{command}` (once; the result is "
            "cached)"
        )
    print(
        f"slmkit: converting {model} to {to} for backend {backend!r} (once; cached; "
        f"same as `{command}`)",
        file=sys.stderr,
        flush=True,
    )
    return convert(model, to=to, **options)
