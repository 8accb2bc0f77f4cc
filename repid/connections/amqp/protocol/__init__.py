"""Sans-IO AMQP 1.0 (OASIS standard), h11 style: bytes in, events and bytes out.

- `types`: the type system codec (`encode`, `decode`, wrapper classes for every primitive).
- `frames`: protocol headers, the frame header, frame bodies.
- `performatives`: open/begin/attach/flow/transfer/disposition/detach/end/close, SASL frames,
  termini, errors and delivery states as dataclasses.
- `message`: the message sections and whole-message `encode_message` / `decode_message`.
- `connection`: the client `Connection` state machine with its sessions and links.

Malformed input raises `AmqpProtocolError` (with an AMQP error condition) from the codecs; the
`Connection` turns it into a close frame and a `ConnectionClosed` event instead of raising.
"""

from repid.connections.amqp.protocol.connection import (
    Connection,
    ConnectionState,
    IncomingDelivery,
    LocalStateError,
    OutgoingDelivery,
    ReceiverLink,
    SenderLink,
    Session,
    Tick,
)
from repid.connections.amqp.protocol.errors import AmqpEncodeError, AmqpProtocolError, Condition
from repid.connections.amqp.protocol.message import Message, decode_message, encode_message
from repid.connections.amqp.protocol.sasl import SaslAnonymous, SaslExternal, SaslPlain

__all__ = [
    "AmqpEncodeError",
    "AmqpProtocolError",
    "Condition",
    "Connection",
    "ConnectionState",
    "IncomingDelivery",
    "LocalStateError",
    "Message",
    "OutgoingDelivery",
    "ReceiverLink",
    "SaslAnonymous",
    "SaslExternal",
    "SaslPlain",
    "SenderLink",
    "Session",
    "Tick",
    "decode_message",
    "encode_message",
]
