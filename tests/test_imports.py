"""The package's modules form layers: no hmtl module imports one that imports it back, not even from inside a
function (a deferred import that closes a circle only hides it: the schema must not need the checks built on it)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hmtl"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every hmtl module -> the hmtl modules it imports anywhere in its source (top level or inside functions)."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
                source = ".".join(part for part in (base, node.module) if part)
                imported.add(source)
                imported.update(f"{source}.{alias.name}" for alias in node.names)  # a submodule imported by name
        graph[name] = {other for other in imported if other in paths and other != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path a -> b -> ... -> a, or None (depth-first search for a back edge)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for other in sorted(graph[node]):
            if state.get(other) == "open":
                return stack[stack.index(other):] + [other]
            if other not in state and (cycle := visit(other)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    return next((cycle for node in sorted(graph) if node not in state and (cycle := visit(node))), None)


def test_no_hmtl_module_imports_itself_back():
    graph = import_graph()
    assert {"hmtl.config", "hmtl.checks", "hmtl.commands", "hmtl.cli", "hmtl.serve"} <= graph.keys()
    assert "hmtl.config" in graph["hmtl.checks"]  # the graph sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_deferred_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
