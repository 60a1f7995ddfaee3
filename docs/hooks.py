"""mkdocs hooks: pages generated from the code, and the docs-test markers made visible.

- ``<!-- slmkit:errors -->`` becomes the error tree of :mod:`slmkit.errors` and one section
  per class with its docstring (what happened, then ``Fix:``), so a new error class appears
  on the troubleshooting page without anyone editing it.
- ``<!-- norun: REASON -->`` before a code block (tests/docs skips that block) becomes a
  visible line saying why the docs tests do not run it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

ERRORS_MARKER = "<!-- slmkit:errors -->"
NORUN = re.compile(r"^<!-- norun: (?P<reason>.+?) -->$", re.MULTILINE)


def error_classes() -> list[type[BaseException]]:
    """Every public error class of slmkit.errors, in the order the module defines them."""
    from slmkit import errors

    classes = [getattr(errors, name) for name in errors.__all__]
    return sorted(classes, key=lambda cls: inspect.getsourcelines(cls)[1])


def _parent(cls: type[BaseException]) -> type[BaseException] | None:
    """The first base inside slmkit.errors (the tree shows a class under its first base)."""
    return next((base for base in cls.__bases__ if base.__module__ == cls.__module__), None)


def _markdown(text: str) -> str:
    """reStructuredText literals (double backticks) as Markdown code spans; Fix: in bold."""
    text = re.sub(r"``(.+?)``", r"`\1`", inspect.cleandoc(text))
    return re.sub(r"^Fix:", "**Fix:**", text, flags=re.MULTILINE)


def render_errors() -> str:
    """The tree (linked to each class's section), then what each error means and its fix."""
    classes = error_classes()
    children: dict[type[BaseException] | None, list[type[BaseException]]] = {}
    for cls in classes:
        children.setdefault(_parent(cls), []).append(cls)
    tree: list[str] = []

    def walk(cls: type[BaseException], depth: int) -> None:
        tree.append(f"{'    ' * depth}- [`{cls.__name__}`](#{cls.__name__.lower()})")
        for child in children.get(cls, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    sections = []
    for cls in classes:
        line: list[type[BaseException]] = [cls]
        while (parent := _parent(line[0])) is not None:
            line.insert(0, parent)
        chain = " › ".join(c.__name__ for c in line)
        also = [b.__name__ for b in cls.__bases__[1:] if b in classes]
        extra = f" (also a `{'`, `'.join(also)}`)" if also else ""
        body = _markdown(cls.__doc__ or "")
        sections.append(f"### {cls.__name__}\n\n`{chain}`{extra}\n\n{body}\n")
    return "\n".join(tree) + "\n\n" + "\n".join(sections)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if ERRORS_MARKER in markdown:
        markdown = markdown.replace(ERRORS_MARKER, render_errors())
    return NORUN.sub(r"*Not run by the docs tests: \g<reason>.*\n", markdown)
