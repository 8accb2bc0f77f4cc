"""The official AsyncAPI 3.0.0 JSON Schema (npm `@asyncapi/specs`, pinned) as a validator."""

from __future__ import annotations

import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[2]


def require_or_skip(reason: str) -> None:
    """Skip, or fail when REPID_REQUIRE_BROKERS=1 (the lead's full test run)."""
    if os.environ.get("REPID_REQUIRE_BROKERS") == "1":
        pytest.fail(f"{reason} (REPID_REQUIRE_BROKERS=1)")
    pytest.skip(reason)


@cache
def fetch_script() -> ModuleType:
    """scripts/fetch_asyncapi_assets.py, imported by path (scripts/ is not a package)."""
    path = ROOT / "scripts" / "fetch_asyncapi_assets.py"
    spec = importlib.util.spec_from_file_location("fetch_asyncapi_assets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _validator() -> jsonschema.Draft7Validator:
    schema_path: Path = fetch_script().fetch_specs()
    schema: dict[str, Any] = json.loads(schema_path.read_text())
    # The bundled schema keeps each definition under its `$id`: register every one, so all
    # the cross-file `$ref`s resolve offline.
    resources = [(uri, DRAFT7.create_resource(d)) for uri, d in schema["definitions"].items()]
    registry: Registry[Any] = Registry().with_resources(resources)
    registry = registry.with_resource(schema["$id"], DRAFT7.create_resource(schema))
    return jsonschema.Draft7Validator(
        schema, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def asyncapi_validator() -> jsonschema.Draft7Validator:
    """The validator, fetching the pinned specs package on first use (skips if impossible)."""
    try:
        return _validator()
    except (RuntimeError, OSError) as exc:
        require_or_skip(f"cannot fetch @asyncapi/specs with npm: {exc}")
        raise


def assert_valid_asyncapi(document: dict[str, Any]) -> None:
    """Fail with every violation listed if `document` is not a valid AsyncAPI 3.0.0 document."""
    # Round-trip through JSON first: the document must be plain JSON data.
    data = json.loads(json.dumps(document))
    errors = sorted(asyncapi_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:20]]
        raise AssertionError("invalid AsyncAPI document:\n" + "\n".join(lines))
