"""Fenced code blocks of the documentation, classified for the docs tests.

A ``python`` block runs; blocks of one page run in order in one namespace (a page reads
top to bottom), top-level ``await`` allowed. In a ``console`` block each ``$ slmkit ...``
command runs and must exit 0 (``pip``, ``nox`` and other tools' commands are not run: they
would change the environment). A ``toml`` block must parse. An HTML comment
``<!-- norun: REASON -->`` on the line before a block exempts it; the site shows the reason
(docs/hooks.py). A block holding only an ``--8<--`` include shows an example file, which
tests/docs/test_examples.py runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>.*)$")
NORUN = re.compile(r"^\s*<!-- norun: (?P<reason>.+?) -->\s*$")
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')
#: Data, pictures and syntax summaries: shown, never run. An untagged block is an error.
NOT_CODE = {"text", "json"}
RUNS = {"python", "console", "toml"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    norun: str | None  # the reason, when exempted

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def include(self) -> Path | None:
        """The file an ``--8<--`` include block shows, if that is all it holds."""
        match = INCLUDE.match(self.code.strip())
        return ROOT / match["path"] if match else None


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        lang = opening["info"].strip().split(" ")[0].strip("{}.")
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = "\n".join(line[indent:] for line in lines[index + 1 : end])
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = NORUN.match(previous)
        found.append(
            Block(page, index + 1, lang, body + "\n", marker["reason"] if marker else None)
        )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def commands(block: Block) -> list[str]:
    """The shell commands of a console block: the ``$`` lines, or every line when no line
    has a prompt (the README's style)."""
    lines = [line for line in block.code.splitlines() if line.strip()]
    if any(line.startswith("$ ") for line in lines):
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    return [line.strip() for line in lines if not line.lstrip().startswith("#")]


def is_slmkit(command: str) -> bool:
    words = shlex.split(command, comments=True)
    return bool(words) and words[0] == "slmkit"
