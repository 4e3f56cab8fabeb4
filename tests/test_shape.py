"""The package's shape: no import circles, short functions, few function-level imports."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import digest

PACKAGE = Path(digest.__file__).resolve().parent
MAX_LINES = 60

# Function-level imports of another digest module, each kept lazy on purpose.
# "*" stands for every target. Key: (importing module, imported module).
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("cli", "*"): "each command loads only its own part of the pipeline: `digest --help` in <0.3 s",
    ("summarize", "llm"): "an offline run never loads the LLM client code",
}

# Functions longer than MAX_LINES, each with the reason it may be (shrink this list).
LONG_FUNCTIONS: dict[str, str] = {
    "draft._parse": "the draft grammar: one pass over the tokens, a branch per token kind",
}


@dataclass(frozen=True)
class Import:
    """One `import` of a digest module."""

    source: str
    target: str
    lazy: bool  # inside a function
    line: int


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(path.relative_to(PACKAGE).with_suffix("").parts): ast.parse(path.read_text())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _targets(node: ast.Import | ast.ImportFrom, source: str, modules: set[str]) -> list[str]:
    """The digest modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = source.split(".")[: -node.level] if "." in source else []
            base = ".".join(["digest", *package, *([base] if base else [])])
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        short = name.removeprefix("digest.")
        if name.startswith("digest.") and short in modules:
            found.append(short)
    return found


def _imports() -> list[Import]:
    """Every import of a digest module by a digest module (TYPE_CHECKING blocks left out)."""
    trees = _modules()
    found: list[Import] = []

    def visit(node: ast.AST, source: str, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, source, set(trees)):
                    if target != source:
                        found.append(Import(source, target, lazy, child.lineno))
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            visit(child, source, inner)

    for name, tree in trees.items():
        visit(tree, name, False)
    return found


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := walk(start)):
            return found
    return None


def test_no_import_circle() -> None:
    edges: dict[str, set[str]] = {}
    for imp in _imports():
        edges.setdefault(imp.source, set()).add(imp.target)
    circle = _cycle(edges)
    assert circle is None, "import circle: " + " → ".join(circle or [])


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_function_level_imports_only_where_listed() -> None:
    used: set[tuple[str, str]] = set()
    unlisted = []
    for imp in _imports():
        if not imp.lazy:
            continue
        key = next(
            (k for k in ((imp.source, imp.target), (imp.source, "*")) if k in LAZY_IMPORTS), None
        )
        if key is None:
            unlisted.append(f"digest/{imp.source}.py:{imp.line} imports {imp.target}")
        else:
            used.add(key)
    assert not unlisted, "function-level imports not in LAZY_IMPORTS: " + "; ".join(unlisted)
    stale = set(LAZY_IMPORTS) - used
    assert not stale, f"LAZY_IMPORTS lists imports that are gone: {sorted(stale)}"


def _functions() -> dict[str, int]:
    """Every function's qualified name (module.Class.function) and its length in lines."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lengths[name] = (child.end_lineno or child.lineno) - child.lineno + 1
                visit(child, name)

    for module, tree in _modules().items():
        visit(tree, module)
    return lengths


def test_no_function_over_the_limit_except_listed() -> None:
    lengths = _functions()
    long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    unlisted = {name: n for name, n in long.items() if name not in LONG_FUNCTIONS}
    assert not unlisted, f"functions over {MAX_LINES} lines: {unlisted}"
    shrunk = sorted(name for name in LONG_FUNCTIONS if name not in long)
    assert not shrunk, f"LONG_FUNCTIONS lists functions now short (or gone): {shrunk}"
