"""`DefaultConverter`: Pydantic when it is installed, the basic converter otherwise."""

from __future__ import annotations

from repid.converters.abc import ConverterT
from repid.converters.basic import BasicConverter
from repid.dependencies.resolver import InputSpec

__all__ = ["DefaultConverter", "pydantic_available"]


def pydantic_available() -> bool:
    try:
        import pydantic
    except ImportError:
        return False
    return pydantic.VERSION.startswith("2.")


def DefaultConverter(spec: InputSpec) -> ConverterT:
    """Build a `PydanticConverter` if Pydantic v2 is importable, else a `BasicConverter`."""
    if pydantic_available():
        from repid.converters.pydantic import PydanticConverter

        return PydanticConverter(spec)
    return BasicConverter(spec)
