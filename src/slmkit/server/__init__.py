"""An OpenAI-compatible HTTP server over any LLM (``pip install "slmkit[server]"``).

    >>> from slmkit.server import create_app
    >>> app = create_app(slmkit.load())            # an ASGI app: mount it, or run it
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)

``slmkit serve`` runs the same app with uvicorn (:func:`slmkit.server.run.serve`).
``import slmkit`` never imports this package, so FastAPI stays optional.
"""

from __future__ import annotations

import importlib.util

from ..errors import BackendNotInstalled

for _module, _package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn")):
    if importlib.util.find_spec(_module) is None:
        raise BackendNotInstalled("server", _package, "server")

from .app import create_app  # noqa: E402

__all__ = ["create_app"]
