"""What the command says about an app: its servers (never a credential) and channels."""

from __future__ import annotations

from repid.app import Repid
from repid.connections.abc import DescribedServerT, ServerT

__all__ = ["all_channels", "channel_actors", "describe_server", "server_lines"]


def describe_server(server: ServerT) -> str:
    """`redis://localhost:6379/0`-style text from the AsyncAPI fields, which hold no secrets."""
    if not isinstance(server, DescribedServerT):
        return type(server).__name__
    described = server.asyncapi_description()
    return f"{described.protocol}://{described.host}{described.pathname or ''}"


def server_lines(app: Repid) -> list[str]:
    """One line per registered server, the default one marked."""
    try:
        default = app.servers.default_name
    except LookupError:
        default = None
    return [
        f"{name}: {describe_server(server)} ({type(server).__name__})"
        + (" [default]" if name == default else "")
        for name, server in app.servers.items()
    ]


def channel_actors(app: Repid) -> dict[str, list[str]]:
    """Actor names by channel, in registration order."""
    channels: dict[str, list[str]] = {}
    for actor in app.actors:
        channels.setdefault(actor.channel, []).append(actor.name)
    return channels


def all_channels(app: Repid) -> list[str]:
    """The channels the app consumes (its actors') and sends to (its registered operations)."""
    names = list(channel_actors(app))
    for operation in app.messages:
        address = operation.channel.address
        if address not in names:
            names.append(address)
    return names
