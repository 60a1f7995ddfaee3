"""Models that install from the package index: assembled once into the cache, verified."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from pathlib import Path

from ..errors import InvalidModelFile, ModelNotFound
from ..paths import cache_dir
from . import PackagedData, PackagedGGUF

__all__ = ["assemble", "packaged_path"]

_BLOCK = 4 << 20


def assemble(packaged: PackagedGGUF) -> Path:
    """Path of the verified GGUF in the cache, building it from its packages on first use."""
    target = cache_dir("models", packaged.filename)
    if _verified(target, packaged):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        if packaged.assembler:
            _run_package_assembler(packaged, tmp)
        else:
            _concatenate(packaged, tmp)
        digest = _sha256(tmp)
        if digest != packaged.sha256:
            raise InvalidModelFile(
                f"assembled {packaged.filename} has sha256 {digest}, expected "
                f"{packaged.sha256}; the model packages are damaged: "
                f"reinstall with {packaged.install} --force-reinstall"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp(target)
    return target


def packaged_path(data: PackagedData) -> Path:
    """The file or folder a data package installs; a single file is checked by sha256 once."""
    spec = importlib.util.find_spec(data.module)
    if spec is None or spec.submodule_search_locations is None:
        raise ModelNotFound(f"the model needs the package {data.dist}: {data.install}")
    path = Path(next(iter(spec.submodule_search_locations))) / data.path
    if not path.exists():
        raise ModelNotFound(
            f"{data.dist} is installed but has no {data.path}: {data.install} --force-reinstall"
        )
    if data.sha256 is not None and not _stamped(path):
        digest = _sha256(path)
        if digest != data.sha256:
            raise InvalidModelFile(
                f"{path} has sha256 {digest}, expected {data.sha256}: "
                f"{data.install} --force-reinstall"
            )
        _stamp_cache(path)
    return path


def _cache_stamp(path: Path) -> Path:
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return cache_dir("models", f"{path.name}-{key}.verified")


def _stamped(path: Path) -> bool:
    stamp = _cache_stamp(path)
    return stamp.is_file() and stamp.read_text() == _fingerprint(path)


def _stamp_cache(path: Path) -> None:
    """Like _stamp(), but kept in the cache: site-packages may be read-only."""
    stamp = _cache_stamp(path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_fingerprint(path))


def _missing(module: str, dist: str, packaged: PackagedGGUF) -> ModelNotFound:
    return ModelNotFound(
        f"model file {packaged.filename} needs the package {dist}, which is not installed: "
        f"{packaged.install}"
    )


def _concatenate(packaged: PackagedGGUF, out: Path) -> None:
    sources = []
    for module, dist, relpath in packaged.parts:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.submodule_search_locations is None:
            raise _missing(module, dist, packaged)
        part = Path(next(iter(spec.submodule_search_locations))) / relpath
        if not part.is_file():
            raise _missing(module, dist, packaged)
        sources.append(part)
    with out.open("wb") as sink:
        for part in sources:
            with part.open("rb") as source:
                while block := source.read(_BLOCK):
                    sink.write(block)


def _run_package_assembler(packaged: PackagedGGUF, out: Path) -> None:
    assert packaged.assembler is not None
    module_name, dist = packaged.assembler
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise _missing(module_name, dist, packaged) from None
    try:
        module.assemble(output_path=out, overwrite=True)
    except (OSError, ValueError) as exc:
        raise InvalidModelFile(
            f"{dist} could not assemble {packaged.filename} ({exc}); "
            f"reinstall it with {packaged.install} --force-reinstall"
        ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _fingerprint(target: Path) -> str:
    stat = target.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _stamp(target: Path) -> None:
    """Record that this exact file (size, mtime) was hashed, so later loads skip hashing."""
    _stamp_path(target).write_text(_fingerprint(target))


def _verified(target: Path, packaged: PackagedGGUF) -> bool:
    if not target.is_file():
        return False
    stamp = _stamp_path(target)
    if stamp.is_file() and stamp.read_text() == _fingerprint(target):
        return True
    if target.stat().st_size == packaged.size and _sha256(target) == packaged.sha256:
        _stamp(target)
        return True
    return False
