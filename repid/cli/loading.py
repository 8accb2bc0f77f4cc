"""Loading the app named on the command line: `package.module:app` or `module:factory()`.

The current directory is put first on `sys.path` (as `python -m` does), so a project run from
its root imports without installing it. Every failure is an `AppLoadError` that says what
went wrong: the module is not found, importing it raised, the attribute is missing, or it is
not a `Repid`.
"""

from __future__ import annotations

import importlib
import os
import sys

from repid.app import Repid
from repid.errors import AppLoadError

__all__ = ["load_app", "split_app_path"]


def split_app_path(path: str) -> tuple[str, str, bool]:
    """(module, attribute, is_factory) of `path`; AppLoadError if it is malformed."""
    module_name, sep, attribute = path.partition(":")
    factory = attribute.endswith("()")
    if factory:
        attribute = attribute[:-2]
    if (
        not sep
        or not module_name
        or not attribute
        or not all(part.isidentifier() for part in (*module_name.split("."), *attribute.split(".")))
    ):
        raise AppLoadError(
            f"app path {path!r} must look like 'package.module:app' "
            "(or 'package.module:factory()' for a function that returns the app)"
        )
    return module_name, attribute, factory


def load_app(path: str) -> Repid:
    """Import and return the `Repid` app that `path` names."""
    module_name, attribute, factory = split_app_path(path)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise AppLoadError(
                f"cannot import {module_name!r}: there is no module named {missing!r} "
                f"(looked in {cwd} and sys.path; run repid from your project's directory or "
                "set PYTHONPATH)"
            ) from None
        raise AppLoadError(
            f"importing {module_name!r} failed: {exc} (a dependency of your module is missing)"
        ) from exc
    except Exception as exc:
        raise AppLoadError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AppLoadError(
                f"module {module_name!r} has no attribute {attribute!r} (app path {path!r})"
            ) from None
    if factory:
        if not callable(value):
            raise AppLoadError(f"{module_name}:{attribute} is not callable, so '()' cannot call it")
        try:
            value = value()
        except Exception as exc:
            raise AppLoadError(
                f"calling the factory {module_name}:{attribute}() failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(value, Repid):
        hint = ""
        if callable(value) and not factory:
            hint = f" (if it is a factory, write '{module_name}:{attribute}()')"
        raise AppLoadError(f"{path!r} is {type(value).__name__!r}, not a Repid app{hint}")
    return value
