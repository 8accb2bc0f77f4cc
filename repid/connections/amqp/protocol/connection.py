"""The AMQP 1.0 client connection as a sans-IO state machine (h11 style).

Bytes from the socket go into `Connection.receive_data`, which returns events; every action
(`begin`, `attach_*`, `flow`, `send`, `settle`, `detach`, `end`, `close`) only queues bytes that
the caller collects with `data_to_send()`. Time comes from the caller through `tick(now)`.
There is no I/O, no asyncio and no clock in this module.

Bad input from the peer never raises: the connection queues a close frame with the matching
error condition (when a close can still be sent), returns `ConnectionClosed(local=True)` and
ignores everything after it.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any

from repid.connections.amqp.protocol.composite import Composite
from repid.connections.amqp.protocol.errors import AmqpProtocolError, Condition
from repid.connections.amqp.protocol.events import (
    ConnectionClosed,
    ConnectionOpened,
    DeliveryUpdated,
    Event,
    LinkAttached,
    LinkDetached,
    LinkFlow,
    MessageReceived,
    SessionBegun,
    SessionEnded,
)
from repid.connections.amqp.protocol.frames import (
    AMQP_HEADER,
    EMPTY_FRAME,
    FRAME_HEADER_SIZE,
    SASL_HEADER,
    TYPE_AMQP,
    TYPE_SASL,
    decode_frame_body,
    parse_frame_header,
)
from repid.connections.amqp.protocol.performatives import (
    ROLE_RECEIVER,
    ROLE_SENDER,
    Attach,
    Begin,
    Close,
    DeliveryState,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Open,
    ReceiverSettleMode,
    SaslChallenge,
    SaslCode,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    SaslResponse,
    SenderSettleMode,
    Source,
    Target,
    Transfer,
)
from repid.connections.amqp.protocol.sasl import SaslMechanism
from repid.connections.amqp.protocol.types import encode_value

__all__ = [
    "Connection",
    "ConnectionState",
    "IncomingDelivery",
    "Link",
    "LocalStateError",
    "OutgoingDelivery",
    "ReceiverLink",
    "SenderLink",
    "Session",
    "Tick",
]

_U32 = 0xFFFFFFFF
_HEADER = struct.Struct(">IBBH")
_pack_tag = struct.Struct(">I").pack


_pack_uint = struct.Struct(">I").pack
#: Most bytes a single-frame first transfer takes: frame header, descriptor, list32 header,
#: handle, delivery-id (uint 5 each), a 255-byte tag (257), null message-format, settled.
_MAX_FIRST_TRANSFER = 8 + 3 + 9 + 5 + 5 + 257 + 1 + 1


def _uint(value: int) -> bytes:
    if value == 0:
        return b"\x43"
    if value <= 0xFF:
        return bytes((0x52, value))
    return b"\x70" + _pack_uint(value)


def _first_transfer(handle: int, delivery_id: int | None, tag: bytes, settled: bool) -> bytes:
    """The encoded first (and only) transfer of a delivery with the default message format.

    Byte for byte what `Transfer(handle=, delivery_id=, delivery_tag=, settled=)` encodes to
    (its trailing defaults are omitted), built without the generic encoder: this runs once
    per published message.
    """
    assert delivery_id is not None
    body = b"".join(
        (
            _uint(handle),
            _uint(delivery_id),
            bytes((0xA0, len(tag))),
            tag,
            b"\x40\x41" if settled else b"\x40\x42",
        )
    )
    size = len(body) + 1
    if size <= 0xFF:
        return b"\x00\x53\x14\xc0" + bytes((size, 5)) + body
    return b"\x00\x53\x14\xd0" + struct.pack(">II", size + 3, 5) + body


class LocalStateError(RuntimeError):
    """The caller asked for something the current state does not allow (a caller bug)."""


class ConnectionState(enum.Enum):
    """Where the connection is in its life."""

    START = "start"  # nothing sent yet
    SASL = "sasl"  # SASL header sent, authenticating
    OPENING = "opening"  # AMQP header and open sent, waiting for the peer's open
    OPENED = "opened"
    CLOSE_SENT = "close_sent"  # waiting for the peer's close
    CLOSED = "closed"  # over; input is ignored


@dataclass(slots=True)
class Tick:
    """What `tick` did: queued a heartbeat, closed for idleness; when to call it again."""

    heartbeat: bool
    close: bool
    next_tick: float | None


@dataclass(slots=True, eq=False)
class IncomingDelivery:
    """A message received on a receiver link. `payload` is the encoded message."""

    link: ReceiverLink
    delivery_id: int
    delivery_tag: bytes
    payload: bytes
    settled: bool
    message_format: int
    state: DeliveryState | None = None


@dataclass(slots=True, eq=False)
class OutgoingDelivery:
    """A message queued on a sender link; `remote_state` is set when the peer answers."""

    link: SenderLink
    delivery_tag: bytes
    payload: bytes
    settled: bool
    message_format: int = 0
    delivery_id: int | None = None
    offset: int = 0
    sent: bool = False
    remote_state: DeliveryState | None = None
    remote_settled: bool = False


class Link:
    """One end of a link. Created by `Session.attach_sender` / `attach_receiver`."""

    role: bool = ROLE_SENDER

    def __init__(self, session: Session, name: str, handle: int, attach: Attach) -> None:
        self.session = session
        self.name = name
        self.handle = handle
        self.local_attach = attach
        self.remote_attach: Attach | None = None
        self.remote_handle: int | None = None
        self.attached = False  # both attaches exchanged and the peer gave a terminus
        self.detach_sent = False
        self.detached = False
        self.credit = 0
        self.delivery_count = 0
        self.available = 0
        self.drain = False

    def detach(self, *, closed: bool = True, error: Error | None = None) -> None:
        """Queue a detach. `LinkDetached` follows when the peer answers."""
        if self.detach_sent or self.detached:
            return
        self.detach_sent = True
        self.session._send(Detach(handle=self.handle, closed=closed, error=error))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, handle={self.handle})"


class SenderLink(Link):
    """Our sending end: `send()` queues deliveries that go out as credit and windows allow."""

    role = ROLE_SENDER

    def __init__(self, session: Session, name: str, handle: int, attach: Attach) -> None:
        super().__init__(session, name, handle, attach)
        self.pending: deque[OutgoingDelivery] = deque()
        self.unsettled: dict[int, OutgoingDelivery] = {}
        self._next_tag = 0

    def send(
        self, payload: bytes, *, settled: bool = False, message_format: int = 0
    ) -> OutgoingDelivery:
        """Queue one encoded message. It is transferred when credit and session window allow."""
        if self.detach_sent or self.detached:
            raise LocalStateError(f"{self!r} is detached")
        tag = _pack_tag(self._next_tag)
        self._next_tag = (self._next_tag + 1) & _U32
        delivery = OutgoingDelivery(self, tag, payload, settled, message_format)
        self.pending.append(delivery)
        # Only this link can have become sendable: every other one is already blocked by its
        # credit or by the session window (each pump runs until it is).
        self.session._pump_link(self)
        return delivery


class ReceiverLink(Link):
    """Our receiving end: grant credit with `flow()`, settle deliveries with `settle()`."""

    role = ROLE_RECEIVER

    def __init__(self, session: Session, name: str, handle: int, attach: Attach) -> None:
        super().__init__(session, name, handle, attach)
        self.unsettled: dict[int, IncomingDelivery] = {}
        self.max_message_size = attach.max_message_size or 0
        self._current: IncomingDelivery | None = None
        self._parts: list[bytes] = []
        self._size = 0

    def flow(self, credit: int, *, drain: bool = False) -> None:
        """Set the link credit to `credit` (an absolute number of further deliveries)."""
        if self.detach_sent or self.detached:
            return
        self.credit = credit
        self.drain = drain
        session = self.session
        session._send(
            Flow(
                next_incoming_id=session.next_incoming_id,
                incoming_window=session.incoming_window,
                next_outgoing_id=session.next_outgoing_id,
                outgoing_window=session.outgoing_window,
                handle=self.handle,
                delivery_count=self.delivery_count,
                link_credit=credit,
                drain=drain,
            )
        )

    def settle(self, delivery: IncomingDelivery | int, state: DeliveryState | None) -> bool:
        """Settle a delivery with an outcome; False if the link is gone (the broker redelivers).

        Consecutive settles with the same outcome are sent as one disposition range.
        """
        delivery_id = delivery if isinstance(delivery, int) else delivery.delivery_id
        if self.unsettled.pop(delivery_id, None) is None:
            raise LocalStateError(f"delivery {delivery_id} is not unsettled on {self!r}")
        if (
            self.detached
            or self.detach_sent
            or self.session.connection.state is not (ConnectionState.OPENED)
        ):
            return False
        self.session._settle(delivery_id, state)
        return True


class Session:
    """A session (one channel). Created by `Connection.begin()`."""

    def __init__(
        self, connection: Connection, channel: int, incoming_window: int, outgoing_window: int
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.remote_channel: int | None = None
        self.begun = False
        self.end_sent = False
        self.ended = False
        self.next_outgoing_id = 0
        self.next_incoming_id = 0
        self.incoming_window = incoming_window
        self.max_incoming_window = incoming_window
        self.outgoing_window = outgoing_window
        self.remote_incoming_window = 0
        self.remote_outgoing_window = 0
        self.next_delivery_id = 0
        self.links: dict[int, Link] = {}  # by our handle
        self.remote_links: dict[int, Link] = {}  # by the peer's handle
        self._by_name: dict[tuple[str, bool], Link] = {}
        self._next_handle = 0
        self._senders_waiting: deque[SenderLink] = deque()
        self._pending_settle: list[Any] | None = None  # [first, last, state]

    # ---------------------------------------------------------------- public API

    def attach_sender(
        self,
        name: str,
        target: Target,
        *,
        source: Source | None = None,
        snd_settle_mode: int = SenderSettleMode.UNSETTLED,
        properties: dict[Any, Any] | None = None,
    ) -> SenderLink:
        """Queue an attach for a sending link."""
        attach = Attach(
            name=name,
            handle=self._alloc_handle(),
            role=ROLE_SENDER,
            snd_settle_mode=snd_settle_mode,
            rcv_settle_mode=ReceiverSettleMode.FIRST,
            source=source if source is not None else Source(),
            target=target,
            initial_delivery_count=0,
            properties=properties,
        )
        link = SenderLink(self, name, attach.handle, attach)
        self._add_link(link)
        return link

    def attach_receiver(
        self,
        name: str,
        source: Source,
        *,
        target: Target | None = None,
        snd_settle_mode: int = SenderSettleMode.UNSETTLED,
        rcv_settle_mode: int = ReceiverSettleMode.FIRST,
        max_message_size: int | None = None,
        properties: dict[Any, Any] | None = None,
    ) -> ReceiverLink:
        """Queue an attach for a receiving link (credit starts at 0: call `flow`)."""
        if max_message_size is None:
            max_message_size = self.connection.max_message_size
        attach = Attach(
            name=name,
            handle=self._alloc_handle(),
            role=ROLE_RECEIVER,
            snd_settle_mode=snd_settle_mode,
            rcv_settle_mode=rcv_settle_mode,
            source=source,
            target=target if target is not None else Target(),
            max_message_size=max_message_size,
            properties=properties,
        )
        link = ReceiverLink(self, name, attach.handle, attach)
        self._add_link(link)
        return link

    def end(self, error: Error | None = None) -> None:
        """Queue an end. `SessionEnded` follows when the peer answers."""
        if self.end_sent or self.ended:
            return
        self.end_sent = True
        self._send(End(error=error))

    # ---------------------------------------------------------------- internals

    def _alloc_handle(self) -> int:
        if self.end_sent or self.ended:
            raise LocalStateError("the session has ended")
        handle = self._next_handle
        while handle in self.links:
            handle += 1
        self._next_handle = handle + 1
        return handle

    def _add_link(self, link: Link) -> None:
        key = (link.name, link.role)
        if key in self._by_name:
            raise LocalStateError(f"a link named {link.name!r} is already attached")
        self.links[link.handle] = link
        self._by_name[key] = link
        self._send(link.local_attach)

    def _drop_link(self, link: Link) -> None:
        link.detached = True
        self.links.pop(link.handle, None)
        if link.remote_handle is not None:
            self.remote_links.pop(link.remote_handle, None)
        self._by_name.pop((link.name, link.role), None)

    def _send(self, body: Composite, payload: bytes = b"") -> None:
        self.connection._send_frame(self.channel, body, payload)

    def _settle(self, delivery_id: int, state: DeliveryState | None) -> None:
        pending = self._pending_settle
        if pending is not None and pending[1] + 1 == delivery_id and pending[2] == state:
            pending[1] = delivery_id
            return
        self._flush_settle()
        self._pending_settle = [delivery_id, delivery_id, state]
        self.connection._settling.add(self)

    def _flush_settle(self) -> None:
        pending = self._pending_settle
        if pending is None:
            return
        self._pending_settle = None
        first, last, state = pending
        self.connection._send_frame(
            self.channel,
            Disposition(
                role=ROLE_RECEIVER,
                first=first,
                last=last if last != first else None,
                settled=True,
                state=state,
            ),
            b"",
            flush=False,
        )

    def _session_flow(self) -> None:
        self._send(
            Flow(
                next_incoming_id=self.next_incoming_id,
                incoming_window=self.incoming_window,
                next_outgoing_id=self.next_outgoing_id,
                outgoing_window=self.outgoing_window,
            )
        )

    def _pump(self) -> None:
        """Transfer queued deliveries while link credit and the peer's window allow."""
        connection = self.connection
        if not self.begun or connection.state is not ConnectionState.OPENED:
            return
        for link in list(self.links.values()):
            if isinstance(link, SenderLink):
                self._pump_link(link)

    def _pump_link(self, link: SenderLink) -> None:
        """Transfer the deliveries queued on one link while its credit and the window allow."""
        if (
            not self.begun
            or not link.attached
            or link.detach_sent
            or self.connection.state is not ConnectionState.OPENED
        ):
            return
        while link.pending and self.remote_incoming_window > 0:
            delivery = link.pending[0]
            if delivery.delivery_id is None:
                if link.credit <= 0:
                    break
                link.credit -= 1
                link.delivery_count = (link.delivery_count + 1) & _U32
                delivery.delivery_id = self.next_delivery_id
                self.next_delivery_id = (self.next_delivery_id + 1) & _U32
            if self._transfer_frames(link, delivery):
                link.pending.popleft()
                delivery.sent = True
                if delivery.settled:
                    delivery.remote_settled = True
                else:
                    link.unsettled[delivery.delivery_id] = delivery

    def _transfer_frames(self, link: SenderLink, delivery: OutgoingDelivery) -> bool:
        """Write frames of `delivery` while the window allows; True when all are written."""
        connection = self.connection
        max_frame = connection.remote_max_frame_size
        payload = delivery.payload
        total = len(payload)
        if (
            delivery.offset == 0
            and not delivery.message_format
            and total <= max_frame - _MAX_FIRST_TRANSFER
            and self.remote_incoming_window > 0
        ):
            # The common case, a whole delivery in one frame: its transfer is encoded directly.
            connection._write_frame(
                self.channel,
                _first_transfer(
                    link.handle, delivery.delivery_id, delivery.delivery_tag, delivery.settled
                ),
                payload,
            )
            delivery.offset = total
            self.next_outgoing_id = (self.next_outgoing_id + 1) & _U32
            self.remote_incoming_window -= 1
            return True
        while self.remote_incoming_window > 0:
            if delivery.offset == 0:
                transfer = Transfer(
                    handle=link.handle,
                    delivery_id=delivery.delivery_id,
                    delivery_tag=delivery.delivery_tag,
                    message_format=delivery.message_format or None,
                    settled=delivery.settled,
                    more=False,
                )
            else:
                transfer = Transfer(handle=link.handle, more=False)
            # Encode as the last frame first: most messages fit in one frame.
            body = bytearray()
            encode_value(transfer.to_described(), body)
            left = total - delivery.offset
            if left > max_frame - FRAME_HEADER_SIZE - len(body):
                transfer.more = True
                body = bytearray()
                encode_value(transfer.to_described(), body)
                room = max_frame - FRAME_HEADER_SIZE - len(body)
                if room <= 0:  # pragma: no cover - max-frame-size is at least 512
                    raise LocalStateError("the peer's max-frame-size cannot hold a transfer")
                end = delivery.offset + room
            else:
                end = total
            last = end == total
            chunk = payload[delivery.offset : end] if (delivery.offset or not last) else payload
            connection._write_frame(self.channel, body, chunk)
            delivery.offset = end
            self.next_outgoing_id = (self.next_outgoing_id + 1) & _U32
            self.remote_incoming_window -= 1
            if last:
                return True
        return False

    # ---------------------------------------------------------------- incoming frames

    def _on_frame(self, body: Composite, payload: Any) -> list[Event]:
        if isinstance(body, Transfer):
            return self._on_transfer(body, payload)
        if isinstance(body, Disposition):
            return self._on_disposition(body)
        if isinstance(body, Flow):
            return self._on_flow(body)
        if isinstance(body, Attach):
            return self._on_attach(body)
        if isinstance(body, Detach):
            return self._on_detach(body)
        if isinstance(body, End):
            return self._on_end(body)
        if isinstance(body, Begin):
            raise AmqpProtocolError(Condition.ILLEGAL_STATE, "begin on a channel already in use")
        raise AmqpProtocolError(
            Condition.ILLEGAL_STATE, f"{body._spec.name} is not a session frame"
        )

    def _on_begin(self, begin: Begin) -> list[Event]:
        self.begun = True
        self.next_incoming_id = begin.next_outgoing_id
        self.remote_incoming_window = begin.incoming_window
        self.remote_outgoing_window = begin.outgoing_window
        self._pump()
        return [SessionBegun(self)]

    def _link_for(self, handle: int) -> Link:
        link = self.remote_links.get(handle)
        if link is None:
            raise AmqpProtocolError(Condition.UNATTACHED_HANDLE, f"handle {handle} is not attached")
        return link

    def _on_attach(self, attach: Attach) -> list[Event]:
        # The peer's role is the opposite of ours: its sender answers our receiver.
        link = self._by_name.get((attach.name, not attach.role))
        if link is None or link.remote_handle is not None:
            raise AmqpProtocolError(
                Condition.NOT_ALLOWED, f"unexpected attach for link {attach.name!r}"
            )
        if attach.handle in self.remote_links:
            raise AmqpProtocolError(Condition.HANDLE_IN_USE, f"handle {attach.handle} in use")
        link.remote_attach = attach
        link.remote_handle = attach.handle
        self.remote_links[attach.handle] = link
        if isinstance(link, ReceiverLink):
            link.delivery_count = attach.initial_delivery_count or 0
            terminus: Any = attach.source
        else:
            terminus = attach.target
        if terminus is None:
            return []  # the peer refused the link; its detach (with the reason) follows
        link.attached = True
        self._pump()
        return [LinkAttached(link)]

    def _on_detach(self, detach: Detach) -> list[Event]:
        link = self._link_for(detach.handle)
        if isinstance(link, ReceiverLink):
            link._current = None
            link._parts = []
        if not link.detach_sent:
            link.detach_sent = True
            self._send(Detach(handle=link.handle, closed=detach.closed))
        self._drop_link(link)
        return [LinkDetached(link, detach.error, detach.closed)]

    def _on_end(self, end: End) -> list[Event]:
        if not self.end_sent:
            self.end_sent = True
            self._send(End())
        self.ended = True
        for link in list(self.links.values()):
            self._drop_link(link)
        self.connection._drop_session(self)
        return [SessionEnded(self, end.error)]

    def _on_flow(self, flow: Flow) -> list[Event]:
        next_incoming = flow.next_incoming_id if flow.next_incoming_id is not None else 0
        self.remote_incoming_window = (
            next_incoming + flow.incoming_window - self.next_outgoing_id
        ) & _U32
        self.remote_outgoing_window = flow.outgoing_window
        events: list[Event] = []
        if flow.handle is not None:
            link = self._link_for(flow.handle)
            if isinstance(link, SenderLink):
                remote_count = (
                    flow.delivery_count if flow.delivery_count is not None else 0
                )  # null: the peer has not seen our initial-delivery-count (0) yet
                credit = flow.link_credit or 0
                link.credit = max((remote_count + credit - link.delivery_count) & _U32, 0)
                if link.credit > 0x7FFFFFFF:  # serial-number arithmetic: "negative" credit
                    link.credit = 0
                link.drain = flow.drain
            else:
                if flow.delivery_count is not None:
                    consumed = (flow.delivery_count - link.delivery_count) & _U32
                    if consumed <= 0x7FFFFFFF:  # the sender advanced (drained) the count
                        link.delivery_count = flow.delivery_count
                        link.credit = max(link.credit - consumed, 0)
                link.available = flow.available or 0
            events.append(LinkFlow(link))
            if flow.echo:
                self._link_flow_echo(link)
        elif flow.echo:
            self._session_flow()
        self._pump()
        if flow.handle is not None:
            flowed = self.remote_links.get(flow.handle)
            if (
                isinstance(flowed, SenderLink)
                and flowed.drain
                and not flowed.pending
                and flowed.credit
            ):
                # Drain: use up the remaining credit and tell the peer.
                flowed.delivery_count = (flowed.delivery_count + flowed.credit) & _U32
                flowed.credit = 0
                self._link_flow_echo(flowed)
        return events

    def _link_flow_echo(self, link: Link) -> None:
        self._send(
            Flow(
                next_incoming_id=self.next_incoming_id,
                incoming_window=self.incoming_window,
                next_outgoing_id=self.next_outgoing_id,
                outgoing_window=self.outgoing_window,
                handle=link.handle,
                delivery_count=link.delivery_count,
                link_credit=link.credit,
                drain=link.drain,
            )
        )

    def _on_transfer(self, transfer: Transfer, payload: Any) -> list[Event]:
        if self.incoming_window <= 0:
            raise AmqpProtocolError(
                Condition.WINDOW_VIOLATION, "transfer beyond the session incoming window"
            )
        self.incoming_window -= 1
        self.next_incoming_id = (self.next_incoming_id + 1) & _U32
        if self.incoming_window <= self.max_incoming_window // 2:
            self.incoming_window = self.max_incoming_window
            self._session_flow()
        link = self._link_for(transfer.handle)
        if not isinstance(link, ReceiverLink):
            raise AmqpProtocolError(Condition.NOT_ALLOWED, "transfer on a link where we send")
        current = link._current
        if current is None:
            if transfer.delivery_id is None or transfer.delivery_tag is None:
                raise AmqpProtocolError(
                    Condition.INVALID_FIELD, "first transfer of a delivery lacks id or tag"
                )
            current = IncomingDelivery(
                link,
                transfer.delivery_id,
                transfer.delivery_tag,
                b"",
                bool(transfer.settled),
                transfer.message_format or 0,
                transfer.state,
            )
            link._current = current
            link._parts = []
            link._size = 0
            link.delivery_count = (link.delivery_count + 1) & _U32
            link.credit = max(link.credit - 1, 0)
        elif transfer.delivery_id is not None and transfer.delivery_id != current.delivery_id:
            raise AmqpProtocolError(
                Condition.INVALID_FIELD, "a new delivery started before the last one ended"
            )
        if transfer.settled:
            current.settled = True
        if transfer.aborted:
            link._current = None
            link._parts = []
            return []
        size = link._size + len(payload)
        limit = link.max_message_size
        if limit and size > limit:
            link._current = None
            link._parts = []
            error = Error(Condition.MESSAGE_SIZE_EXCEEDED, f"delivery larger than {limit} bytes")
            link.detach(closed=True, error=error)
            return [LinkDetached(link, error, True)]
        link._size = size
        if transfer.more:
            link._parts.append(bytes(payload))
            return []
        if link._parts:
            link._parts.append(bytes(payload))
            current.payload = b"".join(link._parts)
            link._parts = []
        else:
            current.payload = bytes(payload)
        link._current = None
        if not current.settled:
            link.unsettled[current.delivery_id] = current
        return [MessageReceived(link, current)]

    def _on_disposition(self, disposition: Disposition) -> list[Event]:
        first = disposition.first
        last = disposition.last if disposition.last is not None else first
        span = (last - first) & _U32
        events: list[Event] = []
        if disposition.role == ROLE_RECEIVER:
            # About deliveries we sent. Walk whichever is smaller: the range or our map.
            # (Nothing below adds or drops links, so the dict is walked without a copy.)
            for link in self.links.values():
                if not isinstance(link, SenderLink) or not link.unsettled:
                    continue
                unsettled = link.unsettled
                ids: Any
                if span == 0:  # a publisher confirm: one delivery
                    ids = (first,) if first in unsettled else ()
                elif span < len(unsettled):
                    ids = [(first + i) & _U32 for i in range(span + 1)]
                    ids = [i for i in ids if i in unsettled]
                else:
                    ids = [i for i in unsettled if (i - first) & _U32 <= span]
                for delivery_id in ids:
                    delivery = unsettled[delivery_id]
                    delivery.remote_state = disposition.state
                    if disposition.settled:
                        delivery.remote_settled = True
                        del unsettled[delivery_id]
                    events.append(DeliveryUpdated(link, delivery))
        else:
            for link in list(self.links.values()):
                if isinstance(link, ReceiverLink) and link.unsettled and disposition.settled:
                    unsettled_in = link.unsettled
                    if span < len(unsettled_in):
                        for i in range(span + 1):
                            unsettled_in.pop((first + i) & _U32, None)
                    else:
                        for delivery_id in [i for i in unsettled_in if (i - first) & _U32 <= span]:
                            del unsettled_in[delivery_id]
        return events


class Connection:
    """The client side of one AMQP 1.0 connection.

    `sasl=None` skips the SASL layer (most brokers, RabbitMQ included, require it).
    `idle_timeout` (seconds) is what we ask of the peer; the peer's own value drives our
    heartbeats. `max_message_size` bounds a reassembled incoming delivery.
    """

    def __init__(
        self,
        *,
        container_id: str,
        hostname: str | None = None,
        sasl: SaslMechanism | None = None,
        max_frame_size: int = 256 * 1024,
        channel_max: int = 255,
        idle_timeout: float | None = 60.0,
        max_message_size: int = 128 * 1024 * 1024,
        properties: dict[Any, Any] | None = None,
    ) -> None:
        if max_frame_size < 512:
            raise ValueError("max_frame_size must be at least 512")
        self.container_id = container_id
        self.hostname = hostname
        self.sasl = sasl
        self.max_frame_size = max_frame_size
        self.channel_max = channel_max
        self.idle_timeout = idle_timeout
        self.max_message_size = max_message_size
        self.properties = properties
        self.state = ConnectionState.START
        self.remote_open: Open | None = None
        self.remote_max_frame_size = 512  # until the peer's open says more
        self.remote_channel_max = 0
        self.remote_idle_timeout: float | None = None
        self.error: Error | None = None
        self.sessions: dict[int, Session] = {}
        self._remote_sessions: dict[int, Session] = {}
        self._next_channel = 0  # see `begin`
        self._settling: set[Session] = set()
        self._out = bytearray()
        self._in = bytearray()
        self._expect_header: bytes | None = None
        self._frame_type = TYPE_SASL
        self._close_sent = False
        self._received = False
        self._sent = False
        self._last_received: float | None = None
        self._last_sent: float | None = None

    # ---------------------------------------------------------------- public API

    def start(self) -> None:
        """Queue the protocol header (and open, when there is no SASL layer)."""
        if self.state is not ConnectionState.START:
            raise LocalStateError("start() was already called")
        if self.sasl is not None:
            self.state = ConnectionState.SASL
            self._out += SASL_HEADER
            self._expect_header = SASL_HEADER
            self._frame_type = TYPE_SASL
        else:
            self._start_amqp()

    @property
    def is_open(self) -> bool:
        """True once both opens are exchanged and until a close."""
        return self.state is ConnectionState.OPENED

    @property
    def is_closed(self) -> bool:
        """True once the connection is over (nothing more to read; flush and drop the socket)."""
        return self.state is ConnectionState.CLOSED

    def data_to_send(self) -> bytes:
        """Everything queued for the socket since the last call."""
        for session in self._settling:
            session._flush_settle()
        self._settling.clear()
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        self._sent = True
        return data

    def begin(self, *, incoming_window: int = 2048, outgoing_window: int = _U32) -> Session:
        """Queue a begin on a new channel."""
        if self.state not in (ConnectionState.OPENING, ConnectionState.OPENED):
            raise LocalStateError(f"cannot begin a session in state {self.state.value}")
        # Channels rotate instead of taking the lowest free one: a session begun right after
        # the peer ended one must not reuse that channel number, because a broker may still be
        # tearing the old session down (RabbitMQ 4.0 can drop a begin that arrives on such a
        # channel, and that session then never begins).
        limit = self.channel_max
        if self.remote_open is not None:
            limit = min(limit, self.remote_channel_max)
        if len(self.sessions) > limit:
            raise LocalStateError("the peer's channel-max is reached")
        channel = self._next_channel if self._next_channel <= limit else 0
        while channel in self.sessions:
            channel = channel + 1 if channel < limit else 0
        self._next_channel = channel + 1
        session = Session(self, channel, incoming_window, outgoing_window)
        self.sessions[channel] = session
        self._send_frame(
            channel,
            Begin(
                remote_channel=None,
                next_outgoing_id=0,
                incoming_window=incoming_window,
                outgoing_window=outgoing_window,
            ),
        )
        return session

    def close(self, error: Error | None = None) -> None:
        """Queue a close. `ConnectionClosed` follows when the peer answers."""
        if self.state in (ConnectionState.CLOSE_SENT, ConnectionState.CLOSED):
            return
        if self.state in (ConnectionState.START, ConnectionState.SASL):
            self.state = ConnectionState.CLOSED
            return
        self._send_frame(0, Close(error=error))
        self._close_sent = True
        self.state = ConnectionState.CLOSE_SENT

    def tick(self, now: float) -> Tick:
        """Check idleness at time `now` (seconds, any monotonic clock).

        Queues an empty frame when we are about to be idle for half the peer's idle-timeout,
        and closes the connection (amqp:resource-limit-exceeded) when the peer has been silent
        longer than our idle-timeout.
        """
        if self._last_received is None or self._received:
            self._last_received = now
        if self._last_sent is None or self._sent or self._out:
            self._last_sent = now
        self._received = self._sent = False
        if self.state in (ConnectionState.CLOSED, ConnectionState.START):
            return Tick(False, False, None)
        deadlines: list[float] = []
        if self.idle_timeout and self.state is not ConnectionState.SASL:
            if now - self._last_received > self.idle_timeout:
                self._fail(
                    AmqpProtocolError(
                        Condition.RESOURCE_LIMIT_EXCEEDED,
                        f"no frame from the peer for {self.idle_timeout} s (idle-timeout)",
                    )
                )
                return Tick(False, True, None)
            deadlines.append(self._last_received + self.idle_timeout)
        heartbeat = False
        if self.remote_idle_timeout and self.state is ConnectionState.OPENED:
            interval = self.remote_idle_timeout / 2
            if now - self._last_sent >= interval:
                self._out += EMPTY_FRAME
                self._last_sent = now
                heartbeat = True
            deadlines.append(self._last_sent + interval)
        return Tick(heartbeat, False, min(deadlines) if deadlines else None)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the socket; returns the events they complete.

        An empty `data` means the peer closed the socket.
        """
        if self.state is ConnectionState.CLOSED:
            return []
        if not data:
            return self._lost("the peer closed the socket")
        self._received = True
        self._in += data
        events: list[Event] = []
        try:
            self._process(events)
        except AmqpProtocolError as exc:
            events.extend(self._fail(exc))
        return events

    # ---------------------------------------------------------------- internals

    def _start_amqp(self) -> None:
        self.state = ConnectionState.OPENING
        self._out += AMQP_HEADER
        self._expect_header = AMQP_HEADER
        self._frame_type = TYPE_AMQP
        idle_ms = int(self.idle_timeout * 1000) if self.idle_timeout else None
        self._send_frame(
            0,
            Open(
                container_id=self.container_id,
                hostname=self.hostname,
                max_frame_size=self.max_frame_size,
                channel_max=self.channel_max,
                idle_time_out=idle_ms,
                properties=self.properties,
            ),
        )

    def _send_frame(
        self, channel: int, body: Composite, payload: bytes = b"", *, flush: bool = True
    ) -> None:
        if flush and self._settling:
            # Keep frame order: a pending settlement range goes before anything later.
            for session in self._settling:
                session._flush_settle()
            self._settling.clear()
        encoded = bytearray()
        encode_value(body.to_described(), encoded)
        self._write_frame(channel, encoded, payload)

    def _write_frame(self, channel: int, body: bytearray | bytes, payload: bytes) -> None:
        size = FRAME_HEADER_SIZE + len(body) + len(payload)
        out = self._out
        out += _HEADER.pack(size, 2, self._frame_type, channel)
        out += body
        if payload:
            out += payload

    def _drop_session(self, session: Session) -> None:
        self.sessions.pop(session.channel, None)
        if session.remote_channel is not None:
            self._remote_sessions.pop(session.remote_channel, None)
        self._settling.discard(session)

    def _lost(self, reason: str) -> list[Event]:
        self.state = ConnectionState.CLOSED
        self.error = Error(Condition.CONNECTION_FORCED, reason)
        return [ConnectionClosed(self.error, local=False)]

    def _fail(self, exc: AmqpProtocolError) -> list[Event]:
        """Close because of bad input (or idleness) with the exception's error condition."""
        error = Error(exc.condition, exc.description or None)
        self.error = error
        if self.state in (ConnectionState.OPENING, ConnectionState.OPENED) and not (
            self._close_sent
        ):
            self._settling.clear()
            self._send_frame(0, Close(error=error), flush=False)
            self._close_sent = True
        self.state = ConnectionState.CLOSED
        self._in.clear()
        return [ConnectionClosed(error, local=True)]

    def _process(self, events: list[Event]) -> None:
        buf = self._in
        pos = 0
        try:
            while self.state is not ConnectionState.CLOSED:
                available = len(buf) - pos
                if self._expect_header is not None:
                    if available < 8:
                        if bytes(buf[pos : pos + available]) != self._expect_header[:available]:
                            self._bad_header(bytes(buf[pos:]))
                        break
                    header = bytes(buf[pos : pos + 8])
                    if header != self._expect_header:
                        self._bad_header(header)
                    pos += 8
                    self._expect_header = None
                    continue
                if available < FRAME_HEADER_SIZE:
                    break
                limit = self.max_frame_size
                frame = parse_frame_header(buf, pos, limit)
                if available < frame.size:
                    break
                start, end = pos + frame.doff * 4, pos + frame.size
                pos = end
                if frame.type != self._frame_type:
                    raise AmqpProtocolError(
                        Condition.FRAMING_ERROR,
                        "SASL frame after SASL" if frame.type == TYPE_SASL else "frame before SASL",
                    )
                if start == end:
                    if frame.type == TYPE_SASL:
                        raise AmqpProtocolError(Condition.FRAMING_ERROR, "empty SASL frame")
                    continue  # heartbeat
                body, payload = decode_frame_body(buf, start, end, frame.type)
                if frame.type == TYPE_SASL:
                    events.extend(self._on_sasl(body))
                else:
                    events.extend(self._on_frame(frame.channel, body, payload))
        finally:
            if pos and self.state is not ConnectionState.CLOSED:
                del buf[:pos]

    def _bad_header(self, header: bytes) -> None:
        raise AmqpProtocolError(Condition.FRAMING_ERROR, f"unexpected protocol header {header!r}")

    def _on_sasl(self, body: Composite) -> list[Event]:
        sasl = self.sasl
        assert sasl is not None  # SASL frames are only accepted when SASL was started
        if isinstance(body, SaslMechanisms):
            offered = body.sasl_server_mechanisms
            if sasl.name not in offered:
                return self._auth_failed(f"the server does not offer SASL {sasl.name} ({offered})")
            self._send_frame(
                0,
                SaslInit(
                    mechanism=sasl.name,
                    initial_response=sasl.initial_response(),
                    hostname=self.hostname,
                ),
            )
            return []
        if isinstance(body, SaslChallenge):
            self._send_frame(0, SaslResponse(response=sasl.respond(body.challenge)))
            return []
        if isinstance(body, SaslOutcome):
            if body.code != SaslCode.OK:
                return self._auth_failed(
                    f"SASL {sasl.name} authentication failed (code {body.code})"
                )
            self._start_amqp()
            return []
        raise AmqpProtocolError(Condition.NOT_ALLOWED, "unexpected SASL frame from the server")

    def _auth_failed(self, reason: str) -> list[Event]:
        self.state = ConnectionState.CLOSED
        self.error = Error(Condition.UNAUTHORIZED_ACCESS, reason)
        self._in.clear()
        return [ConnectionClosed(self.error, local=True)]

    def _on_frame(self, channel: int, body: Composite, payload: Any) -> list[Event]:
        if self.remote_open is None:
            if not isinstance(body, Open):
                raise AmqpProtocolError(Condition.ILLEGAL_STATE, f"{body._spec.name} before open")
            return self._on_open(body)
        if isinstance(body, Close):
            return self._on_close(body)
        if isinstance(body, Open):
            raise AmqpProtocolError(Condition.ILLEGAL_STATE, "a second open")
        if self.state is ConnectionState.CLOSE_SENT:
            return []  # the peer may still be sending; only its close matters now
        session = self._remote_sessions.get(channel)
        if isinstance(body, Begin):
            if session is not None:
                raise AmqpProtocolError(Condition.ILLEGAL_STATE, f"channel {channel} in use")
            if body.remote_channel is None:
                raise AmqpProtocolError(
                    Condition.NOT_ALLOWED, "this client does not accept sessions begun by the peer"
                )
            mine = self.sessions.get(body.remote_channel)
            if mine is None or mine.begun:
                raise AmqpProtocolError(
                    Condition.ILLEGAL_STATE, f"begin answers unknown channel {body.remote_channel}"
                )
            mine.remote_channel = channel
            self._remote_sessions[channel] = mine
            return mine._on_begin(body)
        if session is None:
            raise AmqpProtocolError(
                Condition.FRAMING_ERROR, f"{body._spec.name} on channel {channel} with no session"
            )
        return session._on_frame(body, payload)

    def _on_open(self, open_: Open) -> list[Event]:
        self.remote_open = open_
        self.remote_max_frame_size = max(min(open_.max_frame_size, 1 << 30), 512)
        self.remote_channel_max = open_.channel_max
        self.remote_idle_timeout = open_.idle_time_out / 1000.0 if open_.idle_time_out else None
        if self.state is ConnectionState.OPENING:
            self.state = ConnectionState.OPENED
        for session in self.sessions.values():
            session._pump()
        return [ConnectionOpened(open_)]

    def _on_close(self, close: Close) -> list[Event]:
        if not self._close_sent:
            self._send_frame(0, Close())
            self._close_sent = True
        self.state = ConnectionState.CLOSED
        self.error = close.error
        self._in.clear()
        return [ConnectionClosed(close.error, local=False)]
