"""Where slmkit keeps what it makes: assembled and converted models, measurements."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(*parts: str) -> Path:
    """The user cache dir (``SLMKIT_CACHE_DIR`` overrides), with ``parts`` appended."""
    root = os.environ.get("SLMKIT_CACHE_DIR")
    if root:
        base = Path(root).expanduser()
    else:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("slmkit", appauthor=False))
    return base.joinpath(*parts)
