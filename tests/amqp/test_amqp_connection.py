"""The sans-IO connection state machine, driven by scripted peer bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repid.connections.amqp.protocol import events as ev
from repid.connections.amqp.protocol import frames as fr
from repid.connections.amqp.protocol import performatives as p
from repid.connections.amqp.protocol import types as t
from repid.connections.amqp.protocol.connection import Connection, ConnectionState
from repid.connections.amqp.protocol.errors import Condition
from repid.connections.amqp.protocol.sasl import SaslAnonymous, SaslExternal, SaslPlain
from tests.amqp.amqp_peer import begin_session, bodies, frame, open_connection, parse
from tests.amqp.test_amqp_frames import performatives

RECEIVER_CHANNEL = 5  # the channel the scripted peer uses for its end of the session


def closed_with(events: list[Any], conn: Connection, condition: str) -> None:
    """The connection failed with `condition` and queued a close frame carrying it."""
    closes = [e for e in events if isinstance(e, ev.ConnectionClosed)]
    assert closes and closes[0].local and closes[0].error is not None
    assert closes[0].error.condition == condition, closes[0].error
    assert conn.is_closed
    sent = [b for b in bodies(conn) if isinstance(b, p.Close)]
    assert sent and sent[0].error is not None and sent[0].error.condition == condition


# ------------------------------------------------------------------ SASL and open


def test_sasl_plain_then_open_handshake() -> None:
    conn = Connection(container_id="c1", hostname="vhost:/", sasl=SaslPlain("user", "s3cret"))
    conn.start()
    assert conn.data_to_send() == fr.SASL_HEADER
    events = conn.receive_data(
        fr.SASL_HEADER + frame(p.SaslMechanisms(["AMQPLAIN", "PLAIN"]), sasl=True)
    )
    assert events == []
    out = parse(conn.data_to_send())
    init = out[0][1]
    assert isinstance(init, p.SaslInit)
    assert init.mechanism == "PLAIN"
    assert init.initial_response == b"\x00user\x00s3cret"
    assert init.hostname == "vhost:/"
    assert conn.receive_data(frame(p.SaslOutcome(code=0), sasl=True)) == []
    out = parse(conn.data_to_send())
    assert out[0] == (-1, fr.AMQP_HEADER, b"")
    sent_open = out[1][1]
    assert isinstance(sent_open, p.Open)
    assert sent_open.container_id == "c1"
    assert sent_open.hostname == "vhost:/"
    assert sent_open.idle_time_out == 60000
    events = conn.receive_data(
        fr.AMQP_HEADER + frame(p.Open(container_id="rabbit", max_frame_size=131072))
    )
    assert isinstance(events[0], ev.ConnectionOpened)
    assert conn.is_open
    assert conn.remote_max_frame_size == 131072


def test_password_is_not_in_the_mechanism_repr() -> None:
    assert "s3cret" not in repr(SaslPlain("user", "s3cret"))


@pytest.mark.parametrize(
    ("mechanism", "response"),
    [(SaslAnonymous(), b""), (SaslExternal(), b""), (SaslExternal("me"), b"me")],
)
def test_anonymous_and_external_initial_responses(mechanism: Any, response: bytes) -> None:
    conn = Connection(container_id="c", sasl=mechanism)
    conn.start()
    conn.data_to_send()
    conn.receive_data(fr.SASL_HEADER + frame(p.SaslMechanisms([mechanism.name]), sasl=True))
    init = parse(conn.data_to_send())[0][1]
    assert init.mechanism == mechanism.name
    assert (init.initial_response or b"") == response


def test_sasl_challenge_gets_a_response() -> None:
    conn = Connection(container_id="c", sasl=SaslPlain("u", "p"))
    conn.start()
    conn.receive_data(fr.SASL_HEADER + frame(p.SaslMechanisms(["PLAIN"]), sasl=True))
    conn.data_to_send()
    conn.receive_data(frame(p.SaslChallenge(b"?"), sasl=True))
    assert isinstance(bodies(conn)[0], p.SaslResponse)


def test_mechanism_not_offered_fails_authentication() -> None:
    conn = Connection(container_id="c", sasl=SaslPlain("u", "p"))
    conn.start()
    events = conn.receive_data(fr.SASL_HEADER + frame(p.SaslMechanisms(["GSSAPI"]), sasl=True))
    assert isinstance(events[0], ev.ConnectionClosed)
    assert events[0].error.condition == Condition.UNAUTHORIZED_ACCESS
    assert conn.is_closed


def test_failed_sasl_outcome_closes_without_leaking_the_password() -> None:
    conn = Connection(container_id="c", sasl=SaslPlain("u", "hunter2"))
    conn.start()
    conn.receive_data(fr.SASL_HEADER + frame(p.SaslMechanisms(["PLAIN"]), sasl=True))
    events = conn.receive_data(frame(p.SaslOutcome(code=1), sasl=True))
    assert events[0].error.condition == Condition.UNAUTHORIZED_ACCESS
    assert "hunter2" not in repr(events)
    assert conn.receive_data(b"more bytes") == []


def test_wrong_protocol_header_is_a_framing_error() -> None:
    conn = Connection(container_id="c", sasl=SaslPlain("u", "p"))
    conn.start()
    events = conn.receive_data(b"AMQP\x00\x00\x09\x01")  # an AMQP 0-9-1 broker
    assert events[0].error.condition == Condition.FRAMING_ERROR
    assert conn.is_closed


def test_without_sasl_open_follows_the_header() -> None:
    conn = Connection(container_id="c", sasl=None, idle_timeout=None)
    conn.start()
    out = parse(conn.data_to_send())
    assert out[0][1] == fr.AMQP_HEADER
    assert isinstance(out[1][1], p.Open) and out[1][1].idle_time_out is None


def test_peer_close_is_answered() -> None:
    conn = open_connection()
    events = conn.receive_data(frame(p.Close(error=p.Error("amqp:connection:forced", "bye"))))
    assert events == [ev.ConnectionClosed(p.Error("amqp:connection:forced", "bye"), local=False)]
    assert isinstance(bodies(conn)[0], p.Close)
    assert conn.is_closed


def test_local_close_waits_for_the_peer() -> None:
    conn = open_connection()
    conn.close()
    assert isinstance(bodies(conn)[0], p.Close)
    assert conn.state is ConnectionState.CLOSE_SENT
    events = conn.receive_data(frame(p.Close()))
    assert events == [ev.ConnectionClosed(None, local=False)]
    assert bodies(conn) == []  # no second close


def test_socket_eof_reports_a_lost_connection() -> None:
    conn = open_connection()
    events = conn.receive_data(b"")
    assert isinstance(events[0], ev.ConnectionClosed) and not events[0].local
    assert conn.is_closed


# ------------------------------------------------------------------ sessions and links


def attach_receiver(conn: Connection, session: Any, name: str = "r", initial_count: int = 0) -> Any:
    link = session.attach_receiver(name, p.Source(address="/queues/q"))
    attach = bodies(conn)[0]
    assert isinstance(attach, p.Attach) and attach.role is True
    assert attach.source.address == "/queues/q"
    events = conn.receive_data(
        frame(
            p.Attach(
                name=name,
                handle=7,
                role=False,
                source=p.Source(address="/queues/q"),
                target=p.Target(),
                initial_delivery_count=initial_count,
            ),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert events == [ev.LinkAttached(link)]
    return link


def transfer(delivery_id: int | None, payload: bytes, *, more: bool = False, **kw: Any) -> bytes:
    body = p.Transfer(
        handle=7,
        delivery_id=delivery_id,
        delivery_tag=None if delivery_id is None else delivery_id.to_bytes(4, "big"),
        more=more,
        **kw,
    )
    return frame(body, channel=RECEIVER_CHANNEL, payload=payload)


def test_begin_and_receive_with_credit_and_settlement_ranges() -> None:
    conn = open_connection()
    session = conn.begin()
    begin = bodies(conn)[0]
    assert isinstance(begin, p.Begin) and begin.remote_channel is None
    events = conn.receive_data(
        frame(
            p.Begin(remote_channel=0, next_outgoing_id=0, incoming_window=100, outgoing_window=100),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert events == [ev.SessionBegun(session)]
    link = attach_receiver(conn, session)
    link.flow(3)
    flow = bodies(conn)[0]
    assert isinstance(flow, p.Flow)
    assert (flow.handle, flow.link_credit, flow.delivery_count) == (0, 3, 0)

    events = conn.receive_data(transfer(0, b"one") + transfer(1, b"two") + transfer(2, b"three"))
    assert [e.delivery.payload for e in events] == [b"one", b"two", b"three"]
    assert link.credit == 0 and link.delivery_count == 3
    for e in events:
        link.settle(e.delivery, p.Accepted())
    dispositions = bodies(conn)
    assert dispositions == [
        p.Disposition(role=True, first=0, last=2, settled=True, state=p.Accepted())
    ]


def test_settlements_with_different_outcomes_are_separate_ranges() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(4)
    conn.data_to_send()
    events = conn.receive_data(b"".join(transfer(i, b"m") for i in range(4)))
    link.settle(events[0].delivery, p.Accepted())
    link.settle(events[1].delivery, p.Accepted())
    link.settle(events[2].delivery, p.Rejected())
    link.settle(events[3].delivery, p.Released())
    assert bodies(conn) == [
        p.Disposition(role=True, first=0, last=1, settled=True, state=p.Accepted()),
        p.Disposition(role=True, first=2, settled=True, state=p.Rejected()),
        p.Disposition(role=True, first=3, settled=True, state=p.Released()),
    ]


def test_multi_frame_delivery_is_reassembled() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(1)
    assert conn.receive_data(transfer(0, b"a" * 100, more=True)) == []
    assert conn.receive_data(transfer(None, b"b" * 100, more=True)) == []
    events = conn.receive_data(transfer(None, b"c"))
    assert events[0].delivery.payload == b"a" * 100 + b"b" * 100 + b"c"
    assert link.delivery_count == 1


def test_aborted_delivery_is_dropped() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(2)
    assert conn.receive_data(transfer(0, b"a", more=True)) == []
    assert conn.receive_data(transfer(None, b"", aborted=True)) == []
    events = conn.receive_data(transfer(1, b"next"))
    assert events[0].delivery.payload == b"next"


def test_oversized_delivery_detaches_the_link() -> None:
    conn = open_connection(max_message_size=150)
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(1)
    conn.data_to_send()
    conn.receive_data(transfer(0, b"a" * 100, more=True))
    events = conn.receive_data(transfer(None, b"b" * 100, more=True))
    assert isinstance(events[0], ev.LinkDetached)
    assert events[0].error.condition == Condition.MESSAGE_SIZE_EXCEEDED
    detach = bodies(conn)[0]
    assert (
        isinstance(detach, p.Detach) and detach.error.condition == Condition.MESSAGE_SIZE_EXCEEDED
    )


def test_refused_attach_reports_the_peer_error() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = session.attach_receiver("r", p.Source(address="/queues/missing"))
    conn.data_to_send()
    events = conn.receive_data(
        frame(p.Attach(name="r", handle=7, role=False, source=None), channel=RECEIVER_CHANNEL)
        + frame(
            p.Detach(handle=7, closed=True, error=p.Error("amqp:not-found", "no queue")),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert events == [ev.LinkDetached(link, p.Error("amqp:not-found", "no queue"), True)]
    assert bodies(conn) == [p.Detach(handle=0, closed=True)]
    assert link.detached


def test_session_window_is_replenished() -> None:
    conn = open_connection()
    session = conn.begin(incoming_window=4)
    conn.data_to_send()
    conn.receive_data(
        frame(
            p.Begin(remote_channel=0, next_outgoing_id=0, incoming_window=10, outgoing_window=10),
            channel=RECEIVER_CHANNEL,
        )
    )
    link = attach_receiver(conn, session)
    link.flow(10)
    conn.data_to_send()
    conn.receive_data(transfer(0, b"x") + transfer(1, b"x"))
    flows = [b for b in bodies(conn) if isinstance(b, p.Flow)]
    assert flows and flows[-1].incoming_window == 4 and flows[-1].next_incoming_id == 2


def sender_setup(**kwargs: Any) -> tuple[Connection, Any, Any]:
    remote_window = kwargs.pop("remote_incoming_window", 1000)
    conn = open_connection(**kwargs)
    session = begin_session(conn, remote_incoming_window=remote_window)
    link = session.attach_sender("s", p.Target(address="/queues/q"))
    attach = bodies(conn)[0]
    assert attach.role is False and attach.snd_settle_mode == p.SenderSettleMode.UNSETTLED
    events = conn.receive_data(
        frame(
            p.Attach(name="s", handle=3, role=True, target=p.Target(address="/queues/q")),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert events == [ev.LinkAttached(link)]
    return conn, session, link


def credit(
    link_credit: int, delivery_count: int = 0, next_incoming: int = 0, window: int = 1000
) -> bytes:
    return frame(
        p.Flow(
            next_incoming_id=next_incoming,
            incoming_window=window,
            next_outgoing_id=0,
            outgoing_window=1000,
            handle=3,
            delivery_count=delivery_count,
            link_credit=link_credit,
        ),
        channel=RECEIVER_CHANNEL,
    )


def test_sender_waits_for_credit_then_gets_outcomes() -> None:
    conn, _session, link = sender_setup()
    first = link.send(b"payload-1")
    assert conn.data_to_send() == b""  # no credit yet
    events = conn.receive_data(credit(1))
    assert events == [ev.LinkFlow(link)]
    out = parse(conn.data_to_send())
    assert len(out) == 1
    sent = out[0][1]
    assert isinstance(sent, p.Transfer)
    assert (sent.delivery_id, sent.settled, sent.more) == (0, False, False)
    assert out[0][2] == b"payload-1"
    second = link.send(b"payload-2")
    assert conn.data_to_send() == b""  # credit used up
    conn.receive_data(credit(5, delivery_count=1))
    assert parse(conn.data_to_send())[0][2] == b"payload-2"
    events = conn.receive_data(
        frame(
            p.Disposition(role=True, first=0, last=1, settled=True, state=p.Accepted()), channel=5
        )
    )
    assert [e.delivery for e in events] == [first, second]
    assert first.remote_state == p.Accepted() and first.remote_settled
    assert link.unsettled == {}


def test_large_message_is_split_at_the_peer_max_frame_size_and_window() -> None:
    conn, session, link = sender_setup(remote_max_frame=512, remote_incoming_window=3)
    payload = bytes(range(256)) * 8  # 2048 bytes: 5 frames of at most 512
    delivery = link.send(payload)
    conn.receive_data(credit(1, window=3))
    data = conn.data_to_send()
    out = parse(data)
    assert len(out) == 3  # the peer's session window allows 3 transfer frames
    assert all(body.more for _, body, _ in out)
    conn.receive_data(credit(1, next_incoming=3, window=10))
    out += parse(conn.data_to_send())
    assert [body.more for _, body, _ in out] == [True] * 4 + [False]
    assert b"".join(chunk for _, _, chunk in out) == payload
    assert out[0][1].delivery_id == 0 and out[1][1].delivery_id is None
    assert delivery.sent and session.next_outgoing_id == 5


def test_sender_drain_consumes_credit() -> None:
    conn, _session, link = sender_setup()
    conn.receive_data(
        frame(
            p.Flow(
                next_incoming_id=0,
                incoming_window=100,
                next_outgoing_id=0,
                outgoing_window=100,
                handle=3,
                delivery_count=0,
                link_credit=5,
                drain=True,
            ),
            channel=RECEIVER_CHANNEL,
        )
    )
    reply = bodies(conn)[0]
    assert isinstance(reply, p.Flow)
    assert (reply.delivery_count, reply.link_credit) == (5, 0)


def test_peer_detach_is_answered() -> None:
    conn, _session, link = sender_setup()
    events = conn.receive_data(frame(p.Detach(handle=3, closed=True), channel=RECEIVER_CHANNEL))
    assert events == [ev.LinkDetached(link, None, True)]
    assert bodies(conn) == [p.Detach(handle=0, closed=True)]


def test_peer_end_is_answered() -> None:
    conn, session, _link = sender_setup()
    events = conn.receive_data(frame(p.End(), channel=RECEIVER_CHANNEL))
    assert events == [ev.SessionEnded(session, None)]
    assert bodies(conn) == [p.End()]
    assert conn.sessions == {}


def _answer_begin(conn: Connection, session: Any, remote_channel: int) -> None:
    conn.receive_data(
        frame(
            p.Begin(
                remote_channel=session.channel,
                next_outgoing_id=0,
                incoming_window=100,
                outgoing_window=100,
            ),
            channel=remote_channel,
        )
    )


def test_a_session_begun_after_the_peer_ended_one_takes_another_channel() -> None:
    # RabbitMQ may still be tearing down a session it ended; a begin on that same channel number
    # can be dropped, and the new session then never begins.
    conn = open_connection()
    first, second = conn.begin(), conn.begin()
    _answer_begin(conn, first, 10)
    _answer_begin(conn, second, 11)
    conn.data_to_send()
    conn.receive_data(frame(p.End(), channel=11))
    assert conn.data_to_send()  # our end
    replacement = conn.begin()
    assert replacement.channel not in (first.channel, second.channel)
    sent = parse(conn.data_to_send())
    assert [(ch, type(body)) for ch, body, _ in sent] == [(replacement.channel, p.Begin)]


def test_channels_wrap_around_below_the_peer_channel_max() -> None:
    conn = open_connection()
    conn.remote_channel_max = 2  # what the peer's open allowed
    sessions = [conn.begin() for _ in range(3)]
    assert [s.channel for s in sessions] == [0, 1, 2]
    with pytest.raises(Exception, match="channel-max"):
        conn.begin()
    for n, session in enumerate(sessions):
        _answer_begin(conn, session, 20 + n)
    conn.receive_data(frame(p.End(), channel=20))  # the peer ends channel 0's session
    assert conn.begin().channel == 0  # the only free one, found by wrapping around


# ------------------------------------------------------------------ idle timeout


def test_heartbeats_follow_the_peer_idle_timeout() -> None:
    conn = open_connection(remote_idle_ms=10_000, idle_timeout=None)
    first = conn.tick(100.0)
    assert not first.heartbeat and first.next_tick == 105.0
    assert not conn.tick(104.0).heartbeat
    result = conn.tick(105.0)
    assert result.heartbeat and not result.close
    assert conn.data_to_send() == fr.EMPTY_FRAME


def test_silent_peer_is_closed_for_idleness() -> None:
    conn = open_connection(idle_timeout=5.0)
    conn.tick(0.0)
    conn.receive_data(fr.EMPTY_FRAME)
    assert not conn.tick(4.0).close  # the heartbeat at 4.0 restarts the clock
    assert not conn.tick(8.5).close
    result = conn.tick(9.5)
    assert result.close
    assert conn.is_closed
    close = bodies(conn)[0]
    assert close.error.condition == Condition.RESOURCE_LIMIT_EXCEEDED


# ------------------------------------------------------------------ hostile input


def test_frame_size_below_header_is_a_framing_error() -> None:
    conn = open_connection()
    events = conn.receive_data(b"\x00\x00\x00\x04\x02\x00\x00\x00")
    closed_with(events, conn, Condition.FRAMING_ERROR)


def test_frame_larger_than_max_frame_size_is_rejected_before_buffering() -> None:
    conn = open_connection(max_frame_size=1024)
    events = conn.receive_data(b"\x00\x10\x00\x00\x02\x00\x00\x00" + b"\x00" * 100)
    closed_with(events, conn, Condition.FRAMING_ERROR)


def test_unknown_descriptor_is_a_decode_error() -> None:
    conn = open_connection()
    body = t.encode(t.Described(t.Ulong(0x99), []))
    events = conn.receive_data(fr.encode_frame_header(8 + len(body), 0, 0) + body)
    closed_with(events, conn, Condition.DECODE_ERROR)


def test_truncated_performative_inside_a_frame_is_a_decode_error() -> None:
    conn = open_connection()
    good = t.encode(p.Close().to_described())
    events = conn.receive_data(fr.encode_frame_header(8 + 3, 0, 0) + good[:3])
    closed_with(events, conn, Condition.DECODE_ERROR)


def test_frame_before_open_is_illegal_state() -> None:
    conn = Connection(container_id="c", sasl=None)
    conn.start()
    conn.data_to_send()
    events = conn.receive_data(fr.AMQP_HEADER + frame(p.Begin(None, 0, 1, 1)))
    closed_with(events, conn, Condition.ILLEGAL_STATE)


def test_transfer_on_an_unattached_handle() -> None:
    conn = open_connection()
    begin_session(conn)
    conn.data_to_send()
    events = conn.receive_data(transfer(0, b"x"))
    closed_with(events, conn, Condition.UNATTACHED_HANDLE)


def test_frame_on_a_channel_without_session() -> None:
    conn = open_connection()
    events = conn.receive_data(frame(p.End(), channel=9))
    closed_with(events, conn, Condition.FRAMING_ERROR)


def test_transfer_beyond_the_session_window() -> None:
    conn = open_connection()
    session = conn.begin(incoming_window=1)
    conn.data_to_send()
    conn.receive_data(
        frame(
            p.Begin(remote_channel=0, next_outgoing_id=0, incoming_window=9, outgoing_window=9),
            channel=RECEIVER_CHANNEL,
        )
    )
    link = attach_receiver(conn, session)
    link.flow(5)
    session.incoming_window = 0  # as if the window were used up and not yet replenished
    conn.data_to_send()
    events = conn.receive_data(transfer(0, b"x"))
    closed_with(events, conn, Condition.WINDOW_VIOLATION)


def test_huge_disposition_range_does_not_hang() -> None:
    conn, _session, link = sender_setup()
    link.send(b"x")
    conn.receive_data(credit(1))
    conn.data_to_send()
    events = conn.receive_data(
        frame(
            p.Disposition(role=True, first=0, last=2**32 - 1, settled=True, state=p.Accepted()),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert len(events) == 1


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_open_never_raise(data: bytes) -> None:
    conn = open_connection()
    begin_session(conn)
    conn.data_to_send()
    events = conn.receive_data(data)
    assert all(isinstance(e, ev.Event) for e in events)
    if conn.is_closed:
        close = [e for e in events if isinstance(e, ev.ConnectionClosed)]
        assert close, "closed without saying so"


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_during_sasl_never_raise(data: bytes) -> None:
    conn = Connection(container_id="c", sasl=SaslPlain("u", "p"))
    conn.start()
    events = conn.receive_data(fr.SASL_HEADER + data)
    assert all(isinstance(e, ev.Event) for e in events)


@settings(max_examples=200)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=40))
def test_any_chunking_of_the_byte_stream_gives_the_same_events(cuts: list[int]) -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(10)
    stream = (
        transfer(0, b"a" * 50, more=True)
        + transfer(None, b"b" * 20)
        + fr.EMPTY_FRAME
        + transfer(1, b"second")
    )
    payloads = []
    pos = 0
    for cut in cuts * 20:
        if pos >= len(stream):
            break
        for e in conn.receive_data(stream[pos : pos + cut]):
            payloads.append(e.delivery.payload)
        pos += cut
    if pos < len(stream):
        for e in conn.receive_data(stream[pos:]):
            payloads.append(e.delivery.payload)
    assert payloads == [b"a" * 50 + b"b" * 20, b"second"]


@settings(max_examples=200)
@given(st.lists(st.tuples(performatives, st.integers(0, 6), st.binary(max_size=40)), max_size=6))
def test_well_formed_frames_in_any_order_never_raise(frames: list[Any]) -> None:
    # Valid performatives on random channels and in random states: the connection answers
    # each with events or a close carrying an error condition, never an exception.
    conn = open_connection()
    session = begin_session(conn)
    session.attach_receiver("r", p.Source(address="/queues/q"))
    session.attach_sender("s", p.Target(address="/queues/q"))
    conn.data_to_send()
    for body, channel, payload in frames:
        events = conn.receive_data(
            frame(body, channel=channel, payload=payload if isinstance(body, p.Transfer) else b"")
        )
        assert all(isinstance(e, ev.Event) for e in events)
        for event in events:
            if isinstance(event, ev.ConnectionClosed) and event.local:
                assert event.error is not None and event.error.condition.startswith("amqp:")
        bodies(conn)  # whatever it answers must be well-formed frames


def test_sender_flow_on_a_receiver_link_updates_count_and_credit() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(10)
    conn.receive_data(transfer(0, b"x"))
    assert (link.delivery_count, link.credit) == (1, 9)
    # The sender drained: it advanced its delivery-count by the 9 unused credits.
    events = conn.receive_data(
        frame(
            p.Flow(
                next_incoming_id=0,
                incoming_window=100,
                next_outgoing_id=1,
                outgoing_window=100,
                handle=7,
                delivery_count=10,
                link_credit=0,
                available=3,
            ),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert events == [ev.LinkFlow(link)]
    assert (link.delivery_count, link.credit, link.available) == (10, 0, 3)


def test_echo_flow_is_answered_with_our_link_state() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(4)
    conn.data_to_send()
    conn.receive_data(
        frame(
            p.Flow(
                next_incoming_id=0,
                incoming_window=100,
                next_outgoing_id=0,
                outgoing_window=100,
                handle=7,
                delivery_count=0,
                link_credit=4,
                echo=True,
            ),
            channel=RECEIVER_CHANNEL,
        )
    )
    (answer,) = bodies(conn)
    assert isinstance(answer, p.Flow)
    assert (answer.handle, answer.link_credit, answer.delivery_count) == (0, 4, 0)


def test_peer_settlement_of_incoming_deliveries_forgets_them() -> None:
    conn = open_connection()
    session = begin_session(conn)
    link = attach_receiver(conn, session)
    link.flow(3)
    conn.receive_data(transfer(0, b"a") + transfer(1, b"b") + transfer(2, b"c"))
    assert sorted(link.unsettled) == [0, 1, 2]
    conn.receive_data(
        frame(p.Disposition(role=False, first=0, last=1, settled=True), channel=RECEIVER_CHANNEL)
    )
    assert sorted(link.unsettled) == [2]
    conn.receive_data(
        frame(
            p.Disposition(role=False, first=0, last=2**32 - 1, settled=True),
            channel=RECEIVER_CHANNEL,
        )
    )
    assert link.unsettled == {}


@settings(max_examples=100)
@given(st.integers(512, 2048), st.integers(0, 6000))
def test_transfers_are_split_within_the_peer_max_frame_size(max_frame: int, size: int) -> None:
    conn, _session, link = sender_setup(remote_max_frame=max_frame)
    payload = bytes(i % 251 for i in range(size))
    link.send(payload)
    conn.receive_data(credit(1))
    data = conn.data_to_send()
    frames = parse(data)
    pos = 0
    for _, _, chunk in frames:
        size_field = int.from_bytes(data[pos : pos + 4], "big")
        assert size_field <= max_frame
        pos += size_field
    assert [body.more for _, body, _ in frames] == [True] * (len(frames) - 1) + [False]
    assert b"".join(chunk for _, _, chunk in frames) == payload
