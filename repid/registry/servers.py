"""`app.servers`: the named servers an app publishes to and consumes from."""

from __future__ import annotations

from collections.abc import Iterator

from repid.connections.abc import ServerT
from repid.errors import NoServerRegisteredError, ServerNotFoundError

__all__ = ["ServerRegistry"]


class ServerRegistry:
    """Servers by name, one of them the default.

    The first server registered becomes the default unless a later one is registered with
    `is_default=True` or chosen with `set_default_server`.
    """

    __slots__ = ("_default", "_servers")

    def __init__(self) -> None:
        self._servers: dict[str, ServerT] = {}
        self._default: str | None = None

    def register_server(self, name: str, server: ServerT, is_default: bool = False) -> None:
        """Add `server` under `name` (names are unique)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a server name must be a non-empty string")
        if name in self._servers:
            raise ValueError(f"a server named {name!r} is already registered")
        self._servers[name] = server
        if is_default or self._default is None:
            self._default = name

    def get_server(self, name: str) -> ServerT:
        """The server registered as `name`; `ServerNotFoundError` names the known ones."""
        try:
            return self._servers[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._servers) or "none"
            raise ServerNotFoundError(
                f"no server named {name!r} is registered (registered: {known})"
            ) from None

    def __getitem__(self, name: str) -> ServerT:
        return self.get_server(name)

    def __contains__(self, name: object) -> bool:
        return name in self._servers

    def __iter__(self) -> Iterator[str]:
        return iter(self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def items(self) -> list[tuple[str, ServerT]]:
        """(name, server) pairs in registration order."""
        return list(self._servers.items())

    @property
    def default_name(self) -> str:
        """The name of the default server; `NoServerRegisteredError` when there is none."""
        if self._default is None:
            raise NoServerRegisteredError(
                "no server is registered: call app.servers.register_server(name, server) first"
            )
        return self._default

    @property
    def default(self) -> ServerT:
        """The default server."""
        return self._servers[self.default_name]

    def set_default_server(self, name: str) -> None:
        """Make the server registered as `name` the default."""
        self.get_server(name)
        self._default = name

    def resolve(self, name: str | None) -> tuple[str, ServerT]:
        """(name, server) for `name`, or for the default when `name` is None."""
        if name is None:
            name = self.default_name
        return name, self.get_server(name)

    def replace_all(self, servers: dict[str, ServerT], default: str | None) -> None:
        """Swap every server at once (used by `TestClient`)."""
        self._servers = servers
        self._default = default
