"""A scripted AMQP peer for the state-machine tests: encodes frames, decodes the client's."""

from __future__ import annotations

from typing import Any

from repid.connections.amqp.protocol import frames as fr
from repid.connections.amqp.protocol import performatives as p
from repid.connections.amqp.protocol.connection import Connection
from repid.connections.amqp.protocol.sasl import SaslMechanism, SaslPlain


def frame(body: Any, channel: int = 0, payload: bytes = b"", sasl: bool = False) -> bytes:
    return fr.encode_frame(
        body, channel=channel, payload=payload, frame_type=fr.TYPE_SASL if sasl else fr.TYPE_AMQP
    )


def parse(data: bytes) -> list[tuple[int, Any, bytes]]:
    """Split the client's bytes into (channel, body, payload); headers have channel -1."""
    out: list[tuple[int, Any, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] == b"AMQP":
            out.append((-1, data[pos : pos + 8], b""))
            pos += 8
            continue
        header = fr.parse_frame_header(data, pos, 2**32 - 1)
        start, end = pos + header.doff * 4, pos + header.size
        if start == end:
            out.append((header.channel, None, b""))  # heartbeat
        else:
            body, payload = fr.decode_frame_body(data, start, end, header.type)
            out.append((header.channel, body, bytes(payload)))
        pos = end
    return out


def bodies(conn: Connection) -> list[Any]:
    return [body for _, body, _ in parse(conn.data_to_send())]


def open_connection(
    sasl: SaslMechanism | None = None,
    *,
    remote_max_frame: int = 65536,
    remote_idle_ms: int | None = None,
    **kwargs: Any,
) -> Connection:
    """A client connection with SASL done and opens exchanged; output drained."""
    conn = Connection(
        container_id="client",
        hostname="vhost:/",
        sasl=sasl if sasl is not None else SaslPlain("guest", "guest"),
        **kwargs,
    )
    conn.start()
    conn.data_to_send()
    conn.receive_data(
        fr.SASL_HEADER + frame(p.SaslMechanisms(["PLAIN", "ANONYMOUS", "EXTERNAL"]), sasl=True)
    )
    conn.data_to_send()
    conn.receive_data(frame(p.SaslOutcome(code=0), sasl=True))
    conn.data_to_send()
    events = conn.receive_data(
        fr.AMQP_HEADER
        + frame(
            p.Open(
                container_id="broker", max_frame_size=remote_max_frame, idle_time_out=remote_idle_ms
            )
        )
    )
    assert conn.is_open, events
    return conn


def begin_session(conn: Connection, *, remote_incoming_window: int = 1000) -> Any:
    session = conn.begin()
    conn.data_to_send()
    conn.receive_data(
        frame(
            p.Begin(
                remote_channel=session.channel,
                next_outgoing_id=0,
                incoming_window=remote_incoming_window,
                outgoing_window=2**32 - 1,
            ),
            channel=5,
        )
    )
    return session
