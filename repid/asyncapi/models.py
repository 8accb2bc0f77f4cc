"""AsyncAPI 3.0 info objects given to `Repid(...)`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Contact", "ExternalDocs", "License", "Tag"]


@dataclass(frozen=True, slots=True)
class Contact:
    """Contact information for the API (AsyncAPI `info.contact`)."""

    name: str | None = None
    url: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class License:
    """License information for the API (AsyncAPI `info.license`)."""

    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ExternalDocs:
    """A link to external documentation (AsyncAPI `externalDocs`)."""

    url: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag for grouping (AsyncAPI `tag`)."""

    name: str
    description: str | None = None
    external_docs: ExternalDocs | None = None
