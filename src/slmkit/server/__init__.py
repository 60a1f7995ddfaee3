"""An OpenAI-compatible HTTP server over any LLM (``pip install "slmkit[server]"``).

    >>> from slmkit.server import create_app, serve
    >>> app = create_app(slmkit.load())            # an ASGI app: mount it, or run it
    >>> serve(app, port=8000)                      # what `slmkit serve` does

``import slmkit`` never imports this package, so FastAPI stays optional.
"""

from __future__ import annotations

import importlib.util

from ..errors import BackendNotInstalled

for _module, _package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn")):
    if importlib.util.find_spec(_module) is None:
        raise BackendNotInstalled("server", _package, "server")

from .app import create_app  # noqa: E402
from .run import serve  # noqa: E402

__all__ = ["create_app", "serve"]
