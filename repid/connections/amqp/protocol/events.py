"""Events a `Connection` returns from `receive_data`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from repid.connections.amqp.protocol.performatives import Error, Open

if TYPE_CHECKING:
    from repid.connections.amqp.protocol.connection import (
        IncomingDelivery,
        Link,
        OutgoingDelivery,
        ReceiverLink,
        SenderLink,
        Session,
    )

__all__ = [
    "ConnectionClosed",
    "ConnectionOpened",
    "DeliveryUpdated",
    "Event",
    "LinkAttached",
    "LinkDetached",
    "LinkFlow",
    "MessageReceived",
    "SessionBegun",
    "SessionEnded",
]


class Event:
    """Base class of all events."""

    __slots__ = ()


@dataclass(slots=True)
class ConnectionOpened(Event):
    """The peer's open arrived: the connection is usable."""

    remote: Open


@dataclass(slots=True)
class ConnectionClosed(Event):
    """The connection is over. `local=True` means we closed it (bad input, idleness, SASL).

    After this event the caller flushes `data_to_send()` (a close frame, if any) and drops the
    socket.
    """

    error: Error | None
    local: bool


@dataclass(slots=True)
class SessionBegun(Event):
    """The peer answered our begin."""

    session: Session


@dataclass(slots=True)
class SessionEnded(Event):
    """A session ended (by either side)."""

    session: Session
    error: Error | None


@dataclass(slots=True)
class LinkAttached(Event):
    """The peer attached the other end of our link, with a terminus."""

    link: Link


@dataclass(slots=True)
class LinkDetached(Event):
    """A link was detached (refused at attach time, closed by the peer, or by us)."""

    link: Link
    error: Error | None
    closed: bool


@dataclass(slots=True)
class LinkFlow(Event):
    """The peer updated a link's flow state (for a sender: new credit)."""

    link: Link


@dataclass(slots=True)
class MessageReceived(Event):
    """A complete (possibly multi-frame) delivery arrived on a receiver link."""

    link: ReceiverLink
    delivery: IncomingDelivery


@dataclass(slots=True)
class DeliveryUpdated(Event):
    """The peer set the state of (and usually settled) one of our outgoing deliveries."""

    link: SenderLink
    delivery: OutgoingDelivery
