"""The house rules, read from the source: layering, no import cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("market", "agents", "experiments", "viz")
#: What each layer may import from the project (market <- agents <- experiments <- viz).
ALLOWED = {
    "market": {"market"},
    "agents": {"market", "agents"},
    "experiments": {"market", "agents", "experiments"},
    "viz": {"market", "agents", "experiments", "viz"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(node: ast.AST) -> Iterator[str]:
    """Every absolute import in ``node``, at any depth, ``if TYPE_CHECKING:`` blocks aside."""
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        return
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        yield node.module
        yield from (f"{node.module}.{a.name}" for a in node.names)
    for child in ast.iter_child_nodes(node):
        yield from imports(child)


def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for name, path in MODULES.items():
        for target in imports(ast.parse(path.read_text())):
            # importing one's own package (its __init__) is not an edge of the module graph
            if target in MODULES and target != name and not name.startswith(target + "."):
                graph.add_edge(name, target)
    return graph


def test_each_layer_imports_only_the_layers_to_its_left():
    bad = []
    for name, path in MODULES.items():
        layer = name.split(".")[0]
        for target in imports(ast.parse(path.read_text())):
            top = target.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[layer]:
                bad.append(f"{name} imports {target}")
            if layer == "market" and top == "mesa":
                bad.append(f"{name} imports mesa")
            if layer != "viz" and top == "matplotlib":  # figures are drawn in viz only
                bad.append(f"{name} imports matplotlib")
    assert bad == []


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], cycles


def test_the_cycle_check_sees_a_cycle():
    # the checker itself: two modules importing each other inside functions are a cycle
    a = ast.parse("def f():\n    from market.b import x\n")
    assert list(imports(a)) == ["market.b", "market.b.x"]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import viz\n")
    assert list(imports(guarded)) == ["typing", "typing.TYPE_CHECKING"]
    g = nx.DiGraph([("market.a", "market.b"), ("market.b", "market.a")])
    assert list(nx.simple_cycles(g))


#: Exchange attributes an agent must never assign (money and records are the exchange's own).
_EXCHANGE_STATE = {"fund", "fee_revenue", "bad_debt", "debt", "log", "acc", "marks", "stress"}


def _is_exchange(expr: ast.expr) -> bool:
    text = ast.unparse(expr)
    return text in ("ex", "exchange") or text.endswith(".exchange")


def private_access(source: str) -> list[str]:
    """Uses of the exchange's ``_private`` names, assignments to its state and writes into its
    account arrays or log, in ``source``."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and _is_exchange(node.value):
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
            if (
                isinstance(node.ctx, ast.Store)
                and node.attr in _EXCHANGE_STATE
                and _is_exchange(node.value)
            ):
                bad.append(f"line {node.lineno}: assigns {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            target = ast.unparse(node.value)
            if target.startswith(("acc.", "ex.acc", "exchange.acc", "ex.log", "model.exchange.")):
                bad.append(f"line {node.lineno}: writes {target}[...]")
    return bad


def test_agents_act_only_through_the_public_exchange_api():
    bad = []
    for path in sorted((ROOT / "agents").rglob("*.py")):
        bad += [f"{path.name} {b}" for b in private_access(path.read_text())]
    assert bad == []


def test_the_private_access_check_catches_what_it_should():
    src = "def f(ex):\n    ex._consumed[0] = 1\n    ex.fund = 2\n    ex.acc.cash[3] = 4\n"
    found = private_access(src)
    assert len(found) == 3, found
    assert private_access("class A:\n    def f(self):\n        return self._x\n") == []
