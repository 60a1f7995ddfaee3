"""Third-party backends load through the entry-point group exactly like the built-ins."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import slmkit
from slmkit import errors, registry

PLUGIN = '''
from slmkit.backends.base import Backend, Token, TokenEngine


class EchoEngine(TokenEngine):
    """Repeats the prompt's last character: enough to prove the plumbing."""

    def __init__(self):
        self.context_length = 128
        self.artifact = "echo"
        self.eos_token_ids = frozenset({-1})

    def tokenize(self, text, *, add_special):
        return [ord(c) for c in text]

    def decode(self, token_ids):
        return "".join(chr(t) for t in token_ids)

    def run(self, request):
        while True:
            yield Token(request.prompt_ids[-1])


class EchoBackend(Backend):
    name = "echo"
    extra = "echo"
    description = "third-party demo"

    def load(self, model, options):
        return EchoEngine()


class NeedsMissingBackend(EchoBackend):
    name = "needsmissing"
    extra = "needsmissing"
    packages = (("slmkit_surely_missing_module", "surely-missing-dist"),)
'''


def install_distribution(
    root: Path, name: str, module: str, source: str, entry_points: str
) -> None:
    """Lay out an installed distribution (module + dist-info) the way pip would."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    install_distribution(
        tmp_path,
        "slmkit-echo-plugin",
        "slmkit_echo_plugin",
        PLUGIN,
        """
        [slmkit.backends]
        echo = slmkit_echo_plugin:EchoBackend
        needsmissing = slmkit_echo_plugin:NeedsMissingBackend
        broken = slmkit_echo_plugin_does_not_exist:Backend
        notabackend = slmkit_echo_plugin:PLUGIN_NAME
        """,
    )
    (tmp_path / "slmkit_echo_plugin.py").write_text(PLUGIN + "\nPLUGIN_NAME = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    yield tmp_path
    monkeypatch.undo()
    registry.refresh()


def test_builtin_llamacpp_is_registered_through_entry_points() -> None:
    assert "llamacpp" in registry.backend_names()
    row = next(r for r in slmkit.list_backends() if r.name == "llamacpp")
    assert row.extra == "llamacpp" and row.origin == "slmkit"


def test_outside_plugin_is_listed_and_loads_like_a_builtin(plugin_dir: Path) -> None:
    row = next(r for r in slmkit.list_backends() if r.name == "echo")
    assert (row.installed, row.usable, row.origin) == (True, True, "slmkit-echo-plugin")
    llm = slmkit.load("./", backend="echo")
    assert llm.generate("abc", max_tokens=3).text == "ccc"
    assert llm.info.backend == "echo"


def test_plugin_with_a_missing_package_names_its_extra(plugin_dir: Path) -> None:
    row = next(r for r in slmkit.list_backends() if r.name == "needsmissing")
    assert not row.installed and "surely-missing-dist" in row.reason
    with pytest.raises(errors.BackendNotInstalled, match=r'pip install "slmkit\[needsmissing\]"'):
        slmkit.load("./", backend="needsmissing")


def test_broken_plugin_is_reported_not_raised_when_listing(plugin_dir: Path) -> None:
    rows = {r.name: r for r in slmkit.list_backends()}
    assert not rows["broken"].usable and "failed to import" in rows["broken"].reason
    assert not rows["notabackend"].usable and "not a slmkit Backend" in rows["notabackend"].reason
    with pytest.raises(errors.BackendUnavailable, match="failed to import"):
        slmkit.load("./", backend="broken")


def test_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(errors.UnknownBackend, match="llamacpp"):
        slmkit.load(backend="nosuchbackend")


def test_backend_options_are_validated_by_the_backend(plugin_dir: Path) -> None:
    with pytest.raises(errors.InvalidRequest, match="takes no option 'n_threads'"):
        slmkit.load("./", backend="echo", n_threads=2)
