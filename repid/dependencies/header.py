"""`Header`: inject one message header into an actor or dependency."""

from __future__ import annotations

__all__ = ["Header"]


class Header:
    """Mark a parameter as taken from the message headers.

    The header name is `alias` if given, else the parameter name. A parameter default makes the
    header optional; without one a missing header is a validation error and the message goes to
    the actor's `on_error` outcome.

        async def actor(trace: Annotated[str | None, Header(alias="X-Trace-Id")] = None): ...
    """

    __slots__ = ("alias",)

    def __init__(self, alias: str | None = None) -> None:
        self.alias = alias

    def __repr__(self) -> str:
        return f"Header(alias={self.alias!r})"
