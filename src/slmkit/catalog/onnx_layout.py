"""The folder layout of ONNX Runtime GenAI models, as the hub and the converter lay it out.

Catalog knowledge, not runtime code: the hub resolver uses it to fetch only the variant a
machine needs, and the onnx backend to load it. Reading it needs no onnxruntime-genai.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidModelFile, ModelNotFound
from .search import find_within

__all__ = ["GENAI_CONFIG", "PREFILL_MODEL", "PREFILL_OVERLAY", "pick_variant", "read_json"]

GENAI_CONFIG = "genai_config.json"
#: slmkit's int8 prompt model beside an int4 CPU model, and the genai_config overlay that
#: runs the two as one pipeline (convert/onnx_prefill.py writes them, the backend reads them).
PREFILL_MODEL, PREFILL_OVERLAY = "prefill.onnx", "prefill.json"


def pick_variant(root: Path, provider: str, what: str, *, hub: bool = False) -> Path:
    """The GenAI folder at ``root`` or one or two levels below, built for ``provider``.

    ONNX repos on the hub (Phi-3, Phi-3.5, ...) keep one subfolder per provider and
    precision (``cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4``,
    ``cuda/cuda-int4-rtn-block-32``, ``directml/...``). Each folder's genai_config.json
    says which provider it was built for. In a ``hub`` snapshot, among those for
    ``provider`` int4 wins, then the higher accuracy level, then the name; a local
    folder must hold exactly one for ``provider``.
    """
    if (root / GENAI_CONFIG).is_file():
        return root
    candidates = find_within(root, lambda p: (p / GENAI_CONFIG).is_file(), 2, what)
    if not candidates:
        raise ModelNotFound(
            f"{what} holds no {GENAI_CONFIG} (looked two levels down): it is not an ONNX "
            "Runtime GenAI model; build one with `slmkit convert MODEL --to onnx`"
        )
    matching = [c for c in candidates if _built_for(c) == provider]
    if not matching:
        found = ", ".join(sorted(f"{c.relative_to(root)} ({_built_for(c)})" for c in candidates))
        raise ModelNotFound(
            f"{what} has no variant for execution provider {provider!r} (found: {found}); "
            "pass execution_provider=... for one of those, or the path of one folder"
        )
    if len(matching) > 1 and not hub:
        names = ", ".join(str(c.relative_to(root)) for c in matching)
        raise ModelNotFound(
            f"{what} holds several ONNX models for {provider!r} ({names}); pass the path of one"
        )
    return max(matching, key=lambda c: _variant_rank(c.relative_to(root).as_posix()))


def _built_for(folder: Path) -> str:
    """The provider a GenAI folder was built for, from its genai_config.json."""
    try:
        decoder = read_json(folder / GENAI_CONFIG)["model"]["decoder"]
        options = decoder.get("session_options", {}).get("provider_options", [])
    except (InvalidModelFile, KeyError, TypeError, AttributeError):
        return "unknown"
    names = {name.lower() for entry in options for name in entry}
    if "cuda" in names:
        return "cuda"
    if "dml" in names or "directml" in names:
        return "dml"
    return "cpu" if not names else sorted(names)[0]


def _variant_rank(name: str) -> tuple[int, int, str]:
    lowered = name.lower()
    level = 0
    if "acc-level-" in lowered:
        tail = lowered.split("acc-level-", 1)[1]
        level = int(tail[0]) if tail[:1].isdigit() else 0
    return ("int4" in lowered, level, lowered)  # type: ignore[return-value]


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFound(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise InvalidModelFile(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidModelFile(f"{path} is not a JSON object")
    return data
