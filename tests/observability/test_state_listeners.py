"""Subscription-state listeners (`SubscriptionEventsT`), written once in `BaseServer`.

Here on the in-memory server (pause, resume, close); the reconnect itself (RECOVERING ->
ACTIVE, what `repid_broker_reconnects_total` counts) on every network broker through a cut TCP
proxy in test_readiness.py.
"""

from __future__ import annotations

import logging

import pytest

from repid.connections.abc import (
    DeliveryCapacity,
    ReceivedMessageT,
    SubscriptionEventsT,
    SubscriptionState,
    SubscriptionStateChange,
)
from repid.connections.in_memory import InMemoryServer
from repid.events import event_of

ACTIVE = SubscriptionState.ACTIVE
PAUSED = SubscriptionState.PAUSED
CLOSED = SubscriptionState.CLOSED
RECOVERING = SubscriptionState.RECOVERING


async def _ignore(message: ReceivedMessageT) -> None:
    return None


async def test_a_server_listener_hears_every_subscription_change() -> None:
    server = InMemoryServer()
    assert isinstance(server, SubscriptionEventsT)
    heard: list[SubscriptionStateChange] = []
    remove = server.add_state_listener(heard.append)
    async with server.connection():
        # Opened after the listener was added: heard all the same.
        subscriber = await server.subscribe(
            channels_to_callbacks={"a": _ignore, "b": _ignore}, capacity=DeliveryCapacity(1)
        )
        assert heard == []  # the opening state is read from `state`, not replayed
        await subscriber.pause()
        await subscriber.pause()  # no change, nothing heard
        await subscriber.resume()
        await subscriber.close()
        assert [(c.previous, c.current) for c in heard] == [
            (ACTIVE, PAUSED),
            (PAUSED, ACTIVE),
            (ACTIVE, CLOSED),
        ]
        assert all(c.subscriber is subscriber and c.channels == ("a", "b") for c in heard)
        assert not any(c.is_reconnect for c in heard)

        remove()
        remove()  # twice is harmless
        again = await server.subscribe(
            channels_to_callbacks={"a": _ignore}, capacity=DeliveryCapacity(1)
        )
        await again.pause()
        assert len(heard) == 3


def test_is_reconnect_is_recovering_to_active_only() -> None:
    server = InMemoryServer()

    def change(previous: SubscriptionState, current: SubscriptionState) -> bool:
        return SubscriptionStateChange(server, ("a",), previous, current).is_reconnect  # type: ignore[arg-type]

    assert change(RECOVERING, ACTIVE)
    assert not change(PAUSED, ACTIVE)
    assert not change(ACTIVE, RECOVERING)
    assert not change(RECOVERING, CLOSED)


async def test_a_raising_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = InMemoryServer()
    heard: list[SubscriptionState] = []

    def broken(change: SubscriptionStateChange) -> None:
        raise RuntimeError("listener bug")

    server.add_state_listener(broken)
    server.add_state_listener(lambda change: heard.append(change.current))
    async with server.connection():
        subscriber = await server.subscribe(
            channels_to_callbacks={"a": _ignore}, capacity=DeliveryCapacity(1)
        )
        with caplog.at_level(logging.ERROR, logger="repid.connections"):
            await subscriber.pause()
    assert heard[0] is PAUSED
    failed = [r for r in caplog.records if event_of(r) == "subscription.listener_failed"]
    assert failed and failed[0].exc_info is not None
    assert failed[0].__dict__["channels"] == ["a"] and failed[0].__dict__["state"] == "paused"
