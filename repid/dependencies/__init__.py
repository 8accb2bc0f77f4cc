"""Dependency injection: `Depends`, `Header`, `FullPayload` and the `Message` parameter."""

from repid.dependencies.depends import Depends
from repid.dependencies.header import Header
from repid.dependencies.payload import FullPayload

__all__ = ["Depends", "FullPayload", "Header"]
