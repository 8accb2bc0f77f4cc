"""`FullPayload`: inject the whole decoded payload as one value."""

from __future__ import annotations

__all__ = ["FullPayload"]


class FullPayload:
    """Mark a parameter as receiving the entire payload, validated against its annotation.

        async def actor(user: Annotated[UserPayload, FullPayload()]): ...

    With the Pydantic converter the annotation (usually a model) validates the payload; the
    basic converter passes the decoded JSON unchanged.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "FullPayload()"
