"""The shape of the house, checked: no import cycles, backends import only the contract,
no module over 600 lines. Read from the source with ast, imports inside functions included
(only ``if TYPE_CHECKING:`` blocks are left out: they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "slmkit"
#: What a backend may import from the core: the contract and the helpers it builds on.
BACKEND_MAY_IMPORT = {
    "slmkit.errors",
    "slmkit.types",
    "slmkit.params",
    "slmkit.textstream",
    "slmkit.catalog",
    "slmkit.artifacts",
    "slmkit.gguf",
    "slmkit.probe",
    "slmkit.paths",
    "slmkit.trial",
    "slmkit.calibrate",
    "slmkit.scheduler",
    "slmkit.structured",
    "slmkit._threads",
    "slmkit._metadata",  # typed reads of model metadata files
    "slmkit._prompt",  # plain-text encoding helpers for tokenizers that parse markers
    "slmkit._messages",  # messages in OpenAI's wire shape, for hosted services
    "slmkit._secrets",
    "slmkit.hostfacts",
    "slmkit.embeddings",  # the encoder engines a backend hands out for embedding models
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, modules: set[str]) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    files = sorted(SRC.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := walk(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]  # below the top package


def _with_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Importing slmkit.x.y runs slmkit/x/__init__ first, so an import of a submodule is
    an edge to its packages too, unless the importer lives inside that package (its own
    package has already run). The top package, which re-exports the API, is left out."""
    return {
        node: {
            package
            for target in targets
            for package in (target, *_ancestors(target))
            if package not in ("slmkit", node) and not node.startswith(package + ".")
        }
        for node, targets in graph.items()
    }


def test_no_import_cycle_in_the_package() -> None:
    cycle = _cycle(_with_package_inits(_graph()))
    assert cycle is None, " -> ".join(cycle or [])


def test_backends_import_only_the_core_contract() -> None:
    for module, targets in _graph().items():
        if not module.startswith("slmkit.backends."):
            continue
        core = {".".join(t.split(".")[:2]) for t in targets if t.startswith("slmkit.")}
        extra = core - BACKEND_MAY_IMPORT - {"slmkit.backends"}
        assert not extra, f"{module} imports {sorted(extra)}"


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long, long
