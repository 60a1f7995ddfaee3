"""Backend adapters, one runtime per module; none is imported by ``import slmkit``.

This package is also what ``slmkit.backends()`` calls: the public helper and the
package share one name, so the package module itself is callable and returns the
same rows as :func:`slmkit.list_backends`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self) -> list[Any]:
        from ..registry import backend_statuses

        return backend_statuses()


sys.modules[__name__].__class__ = _CallableModule
