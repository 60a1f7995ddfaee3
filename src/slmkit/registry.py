"""Backends are found through the entry-point group ``slmkit.backends``.

Built-ins register there exactly like third-party plugins. Listing backends loads
only the adapter classes (light modules); no runtime is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .backends.base import Backend
from .errors import BackendUnavailable, UnknownBackend

__all__ = ["BackendStatus", "backend_names", "backend_statuses", "get_backend", "refresh"]

GROUP = "slmkit.backends"


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``slmkit backends``."""

    name: str
    kind: str
    extra: str
    installed: bool
    usable: bool
    reason: str
    description: str
    origin: str


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name.lower(), ep)
    return found


def refresh() -> None:
    """Forget cached entry points (after installing a plugin at run time)."""
    _entry_points.cache_clear()
    _load_class.cache_clear()


def backend_names() -> list[str]:
    return sorted(_entry_points())


@cache
def _load_class(name: str) -> type[Backend]:
    ep = _entry_points()[name]
    try:
        cls = ep.load()
    except Exception as exc:
        raise BackendUnavailable(
            f"backend {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}; "
            "reinstall the package that provides it"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendUnavailable(
            f"entry point {name!r} = {ep.value} is not a slmkit Backend subclass"
        )
    return cls


def get_backend(name: str) -> type[Backend]:
    """The backend class registered as ``name``; UnknownBackend lists the known ones."""
    key = name.strip().lower()
    if key not in _entry_points():
        known = ", ".join(backend_names()) or "none"
        raise UnknownBackend(f"no backend named {name!r}; installed backends: {known} (or 'auto')")
    return _load_class(key)


def backend_statuses(hardware: Any = None) -> list[BackendStatus]:
    """Every registered backend: installed? usable here? why not? which extra?"""
    rows = []
    for name, ep in sorted(_entry_points().items()):
        origin = ep.dist.name if ep.dist is not None else "?"
        try:
            cls = _load_class(name)
        except BackendUnavailable as exc:
            rows.append(BackendStatus(name, "?", "?", False, False, str(exc), "", origin))
            continue
        availability = cls.check(hardware)
        rows.append(
            BackendStatus(
                name=name,
                kind=cls.kind,
                extra=cls.extra,
                installed=availability.installed,
                usable=availability.usable,
                reason=availability.reason,
                description=cls.description,
                origin=origin,
            )
        )
    return rows
