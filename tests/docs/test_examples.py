"""Every file in examples/ runs as it is (an example that no longer runs is a bug).

Each example's docstring says how to install what it needs (``pip install "slmkit[...]"``);
an example whose extras are not installed here is skipped with that command.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .conftest import clean_env

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
#: What an example's output must contain, beyond running cleanly (case-insensitive).
EXPECT = {
    "quickstart.py": "paris",
    "async_and_stops.py": "paris",
    "switch_backend.py": "paris",
}
INSTALL = re.compile(r'pip install "slmkit\[(?P<extras>[^\]]+)\]"')


def missing_extras(script: Path) -> list[str]:
    """The extras named in the example's install line whose packages are not installed."""
    match = INSTALL.search(script.read_text(encoding="utf-8"))
    wanted = match["extras"].split(",") if match else []
    requires = [Requirement(r) for r in metadata.requires("slmkit") or []]
    missing = []
    for extra in wanted:
        for req in requires:
            if req.marker is None or not req.marker.evaluate({"extra": extra.strip()}):
                continue
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                missing.append(extra.strip())
                break
    return missing


def test_every_example_says_how_to_install_it() -> None:
    assert EXAMPLES
    for script in EXAMPLES:
        assert INSTALL.search(script.read_text(encoding="utf-8")), script.name


@pytest.mark.slow
@pytest.mark.usefixtures("offline_models")
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, docs_cwd: Path) -> None:
    missing = missing_extras(script)
    if missing:
        extras = ",".join(missing)
        pytest.skip(f'{script.name} needs extras not installed: pip install "slmkit[{extras}]"')
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=docs_cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), f"{script.name} printed nothing"
    assert EXPECT.get(script.name, "") in done.stdout.lower()
