"""Every code block of docs/ and the README does what it shows, on the real offline models.

How blocks are chosen and marked: tests/docs/blocks.py. The python blocks of a page run in
one child process; each `slmkit` command of a console block runs and must exit 0.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from slmkit.config import load_settings
from slmkit.params import GenerationParams
from slmkit.registry import get_backend

from .blocks import NOT_CODE, ROOT, RUNS, Block, all_blocks, commands, is_slmkit
from .conftest import clean_env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10
    import tomli as tomllib

BLOCKS = all_blocks()
RUNNABLE = [b for b in BLOCKS if b.lang in RUNS and b.norun is None and b.include is None]
#: Generation in the docs is bounded so the whole site runs in a few minutes; the code is
#: unchanged (an explicit max_tokens in a block still wins).
SHORT = {"SLMKIT_MAX_TOKENS": "24"}
#: The blocks that cannot run on a test machine (hosted keys, other runtimes' converted
#: models, minutes-long runs, syntax summaries). Each says why on the page. A new one is a
#: decision: raise this only with a reason a reader would accept.
MOST_NOT_RUN = 20  # 9 + hub.md's 2 (no hub here) + server.md's 4 (long-running server)
#: + scaling.md's 5: a Ray cluster (tests/ray runs it), and GPU engines documented, not tested


def _id(block: Block) -> str:
    return block.where


def test_every_block_is_a_known_kind() -> None:
    unknown = [b.where + f" ({b.lang})" for b in BLOCKS if b.lang not in RUNS | NOT_CODE]
    assert not unknown, f"give these blocks a language the docs tests know: {unknown}"


def test_the_blocks_not_run_are_few_and_say_why() -> None:
    exempt = [b for b in BLOCKS if b.norun is not None]
    listing = "\n".join(f"{b.where}: {b.norun}" for b in exempt)
    assert len(exempt) <= MOST_NOT_RUN, listing
    assert all(len(b.norun or "") >= 15 for b in exempt), listing


def test_an_include_shows_an_existing_example() -> None:
    included = [b.include for b in BLOCKS if b.include is not None]
    assert included, "the docs show at least one example file"
    for path in included:
        assert path.is_file() and path.parent == ROOT / "examples", path


def test_the_quickstart_shows_the_readme_commands() -> None:
    readme = next(b for b in BLOCKS if b.page.name == "README.md" and b.lang == "console")
    quickstart = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    for command in commands(readme):
        assert f"$ {command}\n" in quickstart, command


PYTHON_PAGES = sorted({b.page for b in RUNNABLE if b.lang == "python"})


@pytest.mark.usefixtures("offline_models")
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.slow
def test_python_blocks_run(page: Path, docs_cwd: Path) -> None:
    runnable = [b for b in RUNNABLE if b.page == page and b.lang == "python"]
    spec = docs_cwd / "blocks.json"
    spec.write_text(json.dumps([{"where": b.where, "code": b.code} for b in runnable]))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("run_blocks.py")), str(spec)],
        cwd=docs_cwd,
        env=clean_env(**SHORT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    assert done.stdout.count("--- ") == len(runnable)


#: Each distinct `slmkit` command once (pages repeat some), with the first block showing it.
COMMANDS: dict[str, Block] = {}
for _block in RUNNABLE:
    for _command in commands(_block) if _block.lang == "console" else []:
        for _segment in _command.split(" && "):
            if is_slmkit(_segment):
                COMMANDS.setdefault(shlex.join(shlex.split(_segment, comments=True)), _block)


@pytest.mark.usefixtures("offline_models")
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.slow
def test_slmkit_commands_exit_zero(command: str, docs_cwd: Path) -> None:
    block = COMMANDS[command]
    # `slmkit` is this interpreter's slmkit (not whatever the PATH holds); stdin is closed,
    # so an interactive session ends at once.
    shell = f'slmkit() {{ "{sys.executable}" -m slmkit "$@"; }}\n{command}'
    done = subprocess.run(
        ["bash", "-c", shell],
        cwd=docs_cwd,
        env=clean_env(**SHORT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (block.where, command, done.stderr[-3000:])
    assert done.stdout.strip(), f"{command!r} printed nothing"


TOML = [b for b in BLOCKS if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML, ids=_id)
def test_toml_blocks_are_valid(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tomllib.loads(block.code)
    if "project" in data:  # a packaging snippet (an entry point), not a slmkit config
        assert data["project"]["entry-points"]["slmkit.backends"]
        return
    # A slmkit.toml: it loads, and its parameters and backend options validate.
    (tmp_path / "slmkit.toml").write_text(block.code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SLMKIT_")]:
        monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.source.endswith("slmkit.toml")
    GenerationParams.model_validate(settings.params)
    for backend, options in settings.backend_options.items():
        get_backend(backend).parse_options(options)
