"""Check that a code fragment names only parts of the `repid` API that exist.

The check follows what a reader would copy: `import repid...` / `from repid... import X`
(module and name must exist), attribute chains on those names (`repid.Router`,
`Message.ack`), and the keyword arguments of calls to them. Variables assigned from a call to a
repid class (`app = Repid(...)`) are followed too, so `app.send_message_json(channel=...)` and
`@router.actor(timeout=...)` are checked against the real signatures.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["check_repid_names"]


@dataclass(frozen=True)
class _Instance:
    cls: type


_MISSING = object()


@cache
def _instance_attributes(cls: type) -> frozenset[str]:
    """Attributes an instance of `cls` has beyond its class's: `self.X = ...` in methods,
    dataclass fields, slots and annotations, over the MRO."""
    names: set[str] = set()
    for klass in inspect.getmro(cls):
        names.update(getattr(klass, "__dataclass_fields__", {}) or {})
        slots = klass.__dict__.get("__slots__", ())
        names.update([slots] if isinstance(slots, str) else slots)
        names.update(klass.__dict__.get("__annotations__", {}))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and isinstance(node.ctx, ast.Store)
            ):
                names.add(node.attr)
    return frozenset(names)


def _attribute(value: Any, name: str) -> Any:
    """`value.name` for a module, class or `_Instance`; `_MISSING` when it does not exist."""
    if isinstance(value, _Instance):
        found = inspect.getattr_static(value.cls, name, _MISSING)
        if found is not _MISSING:
            if isinstance(found, property):
                return None  # a value of unknown type: stop following the chain
            return getattr(value.cls, name)
        return None if name in _instance_attributes(value.cls) else _MISSING
    if inspect.ismodule(value):
        found = getattr(value, name, _MISSING)
        if found is _MISSING:
            try:
                return importlib.import_module(f"{value.__name__}.{name}")
            except ImportError:
                return _MISSING
        return found
    found = getattr(value, name, _MISSING)
    if found is _MISSING and isinstance(value, type) and name in _instance_attributes(value):
        return None
    return found


def _accepts(target: Any, keywords: list[str]) -> list[str]:
    """The keywords `target(...)` does not accept (none when it takes **kwargs)."""
    if not keywords or not callable(target):
        return []
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    allowed = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    return [k for k in keywords if k not in allowed]


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.bound: dict[str, Any] = {}
        self.problems: list[str] = []

    # Imports ------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name != "repid" and not alias.name.startswith("repid."):
                continue
            try:
                module = importlib.import_module(alias.name)
            except ImportError as exc:
                self.problems.append(f"line {node.lineno}: import {alias.name}: {exc}")
                continue
            if alias.asname:
                self.bound[alias.asname] = module
            else:
                self.bound["repid"] = importlib.import_module("repid")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module_name = node.module or ""
        if node.level or (module_name != "repid" and not module_name.startswith("repid.")):
            return
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            self.problems.append(f"line {node.lineno}: from {module_name}: {exc}")
            return
        for alias in node.names:
            value = _attribute(module, alias.name)
            if value is _MISSING:
                self.problems.append(
                    f"line {node.lineno}: {module_name} has no name {alias.name!r}"
                )
                continue
            self.bound[alias.asname or alias.name] = value

    # Uses ---------------------------------------------------------------------------------

    def _resolve(self, node: ast.expr) -> Any:
        """What `node` stands for if it is a repid name or attribute chain, else None."""
        if isinstance(node, ast.Name):
            return self.bound.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            if base is None:
                return None
            value = _attribute(base, node.attr)
            if value is _MISSING:
                owner = base.cls.__name__ if isinstance(base, _Instance) else _label(base)
                self.problems.append(f"line {node.lineno}: {owner} has no attribute {node.attr!r}")
                return None
            return value
        if isinstance(node, ast.Call):
            target = self._resolve(node.func)
            if isinstance(target, type):
                return _Instance(target)
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._resolve(node)
        # Do not descend: _resolve already walked the chain.
        if not isinstance(node.value, ast.Name | ast.Attribute):
            self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        target = self._resolve(node.func)
        if target is not None:
            keywords = [k.arg for k in node.keywords if k.arg is not None]
            for unknown in _accepts(target, keywords):
                self.problems.append(
                    f"line {node.lineno}: {_label(target)}() takes no argument {unknown!r}"
                )
        if not isinstance(node.func, ast.Name | ast.Attribute):
            self.visit(node.func)
        elif isinstance(node.func, ast.Attribute) and not isinstance(
            node.func.value, ast.Name | ast.Attribute
        ):
            self.visit(node.func.value)
        for arg in node.args:
            self.visit(arg)
        for keyword in node.keywords:
            self.visit(keyword.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        value = self._resolve(node.value) if isinstance(node.value, ast.Call) else None
        for target in node.targets:
            if isinstance(target, ast.Name):
                if isinstance(value, _Instance):
                    self.bound[target.id] = value
                else:
                    self.bound.pop(target.id, None)
            else:
                self.visit(target)


def _label(value: Any) -> str:
    if isinstance(value, _Instance):
        return value.cls.__name__
    return getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or repr(value)


def check_repid_names(source: str) -> list[str]:
    """Problems found in `source` (empty when every repid name it uses exists)."""
    tree = ast.parse(source)
    checker = _Checker()
    checker.visit(tree)
    return checker.problems
