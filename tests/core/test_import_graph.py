"""The import graph of `repid/` has no cycle outside one broker package.

Every import statement counts - module level, under `TYPE_CHECKING` and inside functions - so
the layering holds for the type checker and for lazy imports too. An edge goes to the module an
import names (`from a.b import c` is `a.b.c` when that is a module, else `a.b`); a package's
`__init__` is a facade of its own and is not implied by importing one of its submodules.
The layers, bottom up: data types and the server protocol (`connections.abc`), converters and
dependencies, routing, the worker, the app; AsyncAPI, the job layer and the test client above the
app; each broker a leaf that imports only the interface and the shared helpers.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "repid"
BROKER_PACKAGES = (
    "repid.connections.amqp",
    "repid.connections.pubsub",
    "repid.connections.redis",
)


def _modules() -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    if node.level > 1:
                        base = base[: -(node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        graph[name].add(f"{target}.{alias.name}")
                    elif target in modules:
                        graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _inside_one_broker(component: list[str]) -> bool:
    return any(all(m.startswith(f"{broker}.") for m in component) for broker in BROKER_PACKAGES)


def test_no_import_cycle_outside_one_broker_package() -> None:
    bad = [c for c in cycles(import_graph()) if not _inside_one_broker(c)]
    assert bad == [], f"import cycles: {bad}"


def test_the_lower_layers_do_not_import_the_higher_ones() -> None:
    graph = import_graph()
    higher = ("repid.app", "repid.jobs", "repid.asyncapi.generator", "repid.testing")
    lower_prefixes = (
        "repid.connections",
        "repid.data",
        "repid.types",
        "repid.message",
        "repid.converters",
        "repid.dependencies",
        "repid.routing",
        "repid.middlewares",
        "repid.worker",
    )
    offending = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith(lower_prefixes)
        for target in targets
        if target.startswith(higher)
    }
    assert offending == set()


def test_a_broker_imports_only_the_interface_and_the_shared_helpers() -> None:
    graph = import_graph()
    allowed = (
        "repid.connections.abc",
        "repid.connections.base",
        "repid.connections.delivery",
        "repid.connections.backoff",
        "repid.connections.coalesce",
        "repid.connections.timeouts",
        "repid.errors",
        "repid._compat",  # repid 2.x's keyword names
    )
    for broker in (*BROKER_PACKAGES, "repid.connections.in_memory"):
        for module, targets in graph.items():
            if module != broker and not module.startswith(f"{broker}."):
                continue
            outside = {t for t in targets if not t.startswith(broker) and not t.startswith(allowed)}
            assert outside == set(), f"{module} imports {outside}"


def test_the_graph_sees_every_kind_of_import() -> None:
    # A cycle made only of a TYPE_CHECKING import and a function-level import is found.
    graph = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert cycles(graph) == [["a", "b"]]
    real = import_graph()
    assert "repid.asyncapi.generator" in real["repid.app"]  # imported inside a method
    assert "repid.converters.abc" in real["repid.data"]  # imported under TYPE_CHECKING
