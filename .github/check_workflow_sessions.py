"""Every `nox -s NAME` in the CI workflow names a session of noxfile.py.

Run by `nox -s lint` (in a session with nox and check-jsonschema's ruamel.yaml installed):
a renamed or removed session must not leave a matrix entry that fails only on GitHub.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import nox.registry
from ruamel.yaml import YAML


def commands(node: object) -> list[str]:
    """Every `run:` string in the workflow."""
    if isinstance(node, dict):
        found = [node["run"]] if isinstance(node.get("run"), str) else []
        return found + [c for value in node.values() for c in commands(value)]
    if isinstance(node, list):
        return [c for item in node for c in commands(item)]
    return []


def expand(line: str, row: dict[str, object]) -> str:
    """``line`` with each ${{ matrix.KEY }} replaced by the value in ``row``."""
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(row[m[1]]), line)


def matrix_sessions(workflow: dict) -> set[str]:
    """Session names from `nox -s` lines, with ${{ matrix.x }} expanded over the matrix."""
    names: set[str] = set()
    for job in workflow["jobs"].values():
        matrix = job.get("strategy", {}).get("matrix", {})
        rows = list(matrix.get("include", [])) or [{}]
        axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
        for key, values in axes.items():
            rows = [{**row, key: value} for row in rows for value in values]
        for command in commands(job.get("steps", [])):
            for line in command.splitlines():
                if "nox" not in line or " -s " not in line:
                    continue
                for row in rows:
                    names.update(expand(line, row).split(" -s ", 1)[1].split())
    return names


def main(path: str) -> int:
    workflow = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    runpy.run_path("noxfile.py")
    known = set(nox.registry.get())
    wanted = matrix_sessions(workflow)
    unknown = sorted(n for n in wanted if re.sub(r"-3\.\d+$", "", n) not in known)
    if not wanted or unknown:
        print(f"{path}: no nox session named {unknown or 'at all'}; noxfile has {sorted(known)}")
        return 1
    print(f"{path}: {len(wanted)} nox sessions, all defined in noxfile.py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
