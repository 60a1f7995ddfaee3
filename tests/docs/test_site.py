"""The generated parts of the site: the troubleshooting page and the norun captions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from slmkit import errors

from .blocks import ROOT


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_troubleshooting_has_a_section_with_the_fix_for_every_error() -> None:
    page = hooks().render_errors()
    for name in errors.__all__:
        cls = getattr(errors, name)
        section = page.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert "**Fix:**" in section, name
        assert (cls.__doc__ or "").split("\n")[0].replace("``", "`") in section, name


def test_the_tree_nests_each_error_under_its_first_base() -> None:
    tree = hooks().render_errors().split("\n\n")[0].splitlines()
    depth = {line.split("`")[1]: (len(line) - len(line.lstrip())) // 4 for line in tree}
    assert depth["SlmkitError"] == 0
    assert depth["HostedError"] == 1
    assert depth["RateLimitError"] == depth["StreamInterrupted"] == 2
    assert depth["ServiceRetired"] == 3
    chain = "`SlmkitError › HostedError › StreamInterrupted` (also a `GenerationError`)"
    assert chain in hooks().render_errors()


def test_a_norun_marker_becomes_a_visible_reason() -> None:
    page = "text\n\n<!-- norun: needs a key -->\n```python\nx = 1\n```\n"
    rendered = hooks().on_page_markdown(page)
    assert "*Not run by the docs tests: needs a key.*" in rendered
    assert "<!--" not in rendered


def test_the_troubleshooting_page_asks_for_the_generated_list() -> None:
    page = Path(ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    assert hooks().ERRORS_MARKER in page
