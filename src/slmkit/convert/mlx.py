"""``--to mlx``: a transformers checkpoint into an MLX model folder, by mlx-lm's converter.

The source is the plain checkpoint that ``--to hf`` makes from a GGUF (converted
first and cached when needed), or a checkpoint folder given directly. ``bits``:

- ``4`` (default) and ``8``: affine quantization, group size 64, what the
  mlx-community repos ship; tensors left unquantized (norms) keep the checkpoint's
  dtype.
- ``16``: no quantization, weights cast to bfloat16. bfloat16 rather than float16
  because Gemma 3's activations overflow float16.

mlx-lm also loads the fp32 checkpoint itself without any conversion; on a Linux
CPU that is the fastest way to run it (see docs/backends/mlx.md).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest
from . import Source
from .options import refuse_unknown
from .progress import step

NAME = "mlx"
PACKAGES = (("mlx_lm", "mlx-lm"), ("mlx.core", "mlx"))
EXTRA = "mlx"

#: bits -> cache-dir variant.
VARIANTS = {4: "4bit", 8: "8bit", 16: "bf16"}
DEFAULT_BITS = 4
GROUP_SIZE = 64


def bits_of(options: dict[str, Any]) -> int:
    """The validated ``bits`` option (4, 8 or 16)."""
    refuse_unknown(
        options,
        {"bits"},
        "convert --to mlx takes only --bits (4, 8 or 16)",
    )
    value = options.get("bits")
    if value is None:
        return DEFAULT_BITS
    try:
        bits = int(value)
    except (TypeError, ValueError):
        bits = -1
    if bits not in VARIANTS or isinstance(value, bool):
        raise InvalidRequest(
            f"convert --to mlx: bits={value!r} is not one of 4, 8, 16 (16 = bfloat16, "
            "no quantization)",
            field="bits",
        )
    return bits


def variant(**options: Any) -> str:
    """``4bit``, ``8bit`` or ``bf16``: the cache folder is ``<model>/mlx-<variant>``."""
    return VARIANTS[bits_of(options)]


def build(source: Source, out: Path, **options: Any) -> None:
    from mlx_lm import convert as mlx_convert

    bits = bits_of(options)
    checkpoint = _checkpoint(source)
    # mlx-lm refuses an existing output folder; write beside it, then move the files in.
    work = out / "mlx-lm-output"
    kwargs: dict[str, Any] = (
        {"dtype": "bfloat16"}
        if bits == 16
        else {"quantize": True, "q_bits": bits, "q_group_size": GROUP_SIZE}
    )
    step(f"mlx-lm: {'casting to bfloat16' if bits == 16 else f'quantizing to {bits} bits'}")
    with contextlib.redirect_stdout(io.StringIO()):  # its "[INFO] ..." lines
        mlx_convert(hf_path=str(checkpoint), mlx_path=str(work), **kwargs)
    for item in work.iterdir():
        shutil.move(str(item), str(out / item.name))
    work.rmdir()


def _checkpoint(source: Source) -> Path:
    """The transformers checkpoint to start from: given, or made (and cached) from the GGUF."""
    if source.folder is not None:
        return source.folder
    from . import convert

    return convert(source.name, to="hf")
