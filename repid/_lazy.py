"""Lazy exports: names whose modules need an optional extra load on first access."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["load_lazy"]


def load_lazy(
    namespace: dict[str, Any], owner: str, name: str, table: Mapping[str, tuple[str, str]]
) -> Any:
    """Import `name` from its module in `table` (`name -> (module, extra)`) into `namespace`.

    A missing client library becomes an ImportError that names the extra to install. Unknown
    names raise AttributeError, as a module's `__getattr__` must.
    """
    if name not in table:
        raise AttributeError(f"module {owner!r} has no attribute {name!r}")
    module_name, extra = table[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"repid.{name} needs the {extra!r} extra: pip install 'repid[{extra}]' ({exc})"
        ) from exc
    value = getattr(module, name)
    namespace[name] = value
    return value
