"""AsyncAPI 3.0: document generation, the docs page and the embedded docs server."""

from repid.asyncapi.models import Contact, ExternalDocs, License, Tag
from repid.asyncapi.settings import AsyncAPIServerSettings

__all__ = ["AsyncAPIServerSettings", "Contact", "ExternalDocs", "License", "Tag"]
