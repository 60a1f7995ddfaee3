"""Settings: keyword arguments > SLMKIT_* environment > slmkit.toml / [tool.slmkit] > defaults.

A file looks like::

    model = "qwen2.5-coder-0.5b-instruct"
    backend = "llamacpp"          # or "auto", "onnx", "openai", ...

    [params]                      # default generation parameters
    max_tokens = 256
    temperature = 0.0

    [backends.llamacpp]           # options for one backend
    n_threads = 2
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidRequest

__all__ = ["Settings", "load_settings"]

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"

#: SLMKIT_<NAME> variables that set default generation parameters, with their types.
_PARAM_ENV = {
    "max_tokens": int,
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "seed": int,
    "repetition_penalty": float,
}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration for one load()."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "defaults"

    def options_for(self, backend: str) -> dict[str, Any]:
        return dict(self.backend_options.get(backend, {}))


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def find_config_file(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """SLMKIT_CONFIG, else slmkit.toml or pyproject.toml [tool.slmkit] in cwd or a parent."""
    explicit = os.environ.get("SLMKIT_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"SLMKIT_CONFIG points to {path}, which does not exist")
        data = _read_toml(path)
        if path.name != "pyproject.toml":
            return path, data
        return path, _tool_section(data, path) or data
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "slmkit.toml"
        if candidate.is_file():
            return candidate, _read_toml(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            section = _tool_section(_read_toml(pyproject), pyproject)
            if section is not None:
                return pyproject, section
    return None


def _tool_section(data: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """pyproject.toml's [tool.slmkit] table, or None when it has none."""
    tool = data.get("tool")
    if tool is None:
        return None
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table, not {_kind(tool)}")
    section = tool.get("slmkit")
    if section is not None and not isinstance(section, dict):
        raise ConfigError(
            f"{path}: tool.slmkit must be a table ([tool.slmkit]), not {_kind(section)}"
        )
    return section


def _check_table(data: dict[str, Any], origin: str) -> None:
    allowed = {"model", "backend", "params", "backends"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key(s) {', '.join(map(_key, sorted(unknown)))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    for key in ("model", "backend"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise ConfigError(f"{origin}: {key} must be a non-empty string, not {_kind(data[key])}")
    for key in ("params", "backends"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{origin}: [{key}] must be a table, not {_kind(data[key])}")
    for name, options in data.get("backends", {}).items():
        if not isinstance(options, dict):
            name = _key(name)
            raise ConfigError(
                f"{origin}: backends.{name} must be a table of that backend's options "
                f"([backends.{name}] then one option per line), not {_kind(options)}"
            )
    _check_params(data.get("params", {}), lambda name: f"{origin}: params.{_key(name)}")


def _key(name: str) -> str:
    """A TOML key as written in a message: bare when it can be, else quoted (one line)."""
    return name if re.fullmatch(r"[A-Za-z0-9_\-\[\]]+", name) else json.dumps(name)


def _check_params(params: dict[str, Any], where: Callable[[str], str]) -> None:
    """Generation parameters from a file or the environment, checked where they come from."""
    from .params import parse_params

    try:
        parse_params(None, **params)
    except InvalidRequest as exc:
        raise ConfigError(f"{where(exc.field or 'params')}: {exc}") from None


def _kind(value: Any) -> str:
    """A config value as the user wrote it, with its TOML type."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    kind = "table" if isinstance(value, dict) else names.get(type(value), type(value).__name__)
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"the {kind} {shown}"


def _env_params() -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, kind in _PARAM_ENV.items():
        raw = os.environ.get(f"SLMKIT_{name.upper()}")
        if raw is None or raw == "":
            continue
        try:
            params[name] = kind(raw)
        except ValueError:
            raise ConfigError(
                f"SLMKIT_{name.upper()}={raw!r} is not a valid {kind.__name__}"
            ) from None
    stop = os.environ.get("SLMKIT_STOP")
    if stop:
        params["stop"] = stop
    _check_params(params, lambda name: f"SLMKIT_{name.split('[')[0].upper()}")
    return params


def load_settings(
    model: str | None = None,
    backend: str | None = None,
    params: dict[str, Any] | None = None,
) -> Settings:
    """Merge the sources in priority order: arguments, environment, file, defaults."""
    merged: dict[str, Any] = {
        "model": DEFAULT_MODEL,
        "backend": "auto",
        "params": {},
        "backends": {},
    }
    sources = ["defaults"]
    found = find_config_file()
    if found is not None:
        path, data = found
        _check_table(data, str(path))
        merged.update({k: v for k, v in data.items() if k in ("model", "backend")})
        merged["params"].update(data.get("params", {}))
        merged["backends"] = {k: dict(v) for k, v in data.get("backends", {}).items()}
        sources.append(str(path))
    env_model, env_backend = os.environ.get("SLMKIT_MODEL"), os.environ.get("SLMKIT_BACKEND")
    if env_model:
        merged["model"] = env_model
    if env_backend:
        merged["backend"] = env_backend
    env_params = _env_params()
    merged["params"].update(env_params)
    if env_model or env_backend or env_params:
        sources.append("environment")
    if model is not None:
        merged["model"] = model
    if backend is not None:
        merged["backend"] = backend
    merged["params"].update(params or {})
    return Settings(
        model=str(merged["model"]),
        backend=str(merged["backend"]).strip().lower(),
        params=merged["params"],
        backend_options=merged["backends"],
        source=" < ".join(sources),
    )
