"""Routing a received message to the first matching actor of its channel.

Shared by the worker loop and `TestClient`, so tests exercise the exact production path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from repid.connections.abc import DeliveryLimitT, ReceivedMessageT
from repid.worker.actor import CompiledActor, ExecutionResult
from repid.worker.settlement import (
    POISON_THRESHOLD,
    Sightings,
    poison_threshold,
    settle,
    unrouted_decision,
)

if TYPE_CHECKING:
    from repid.observers import MessageObserverT

__all__ = ["POISON_THRESHOLD", "Dispatcher"]

logger = logging.getLogger("repid.worker")


class Dispatcher:
    """Actors grouped by channel, in registration order."""

    __slots__ = ("observers", "poison", "routes")

    def __init__(
        self, actors: Sequence[CompiledActor], observers: Sequence[MessageObserverT] = ()
    ) -> None:
        routes: dict[str, list[CompiledActor]] = {}
        for actor in actors:
            routes.setdefault(actor.data.channel, []).append(actor)
        self.routes: dict[str, tuple[CompiledActor, ...]] = {
            channel: tuple(found) for channel, found in routes.items()
        }
        self.poison = Sightings()
        self.observers = tuple(observers)

    @property
    def channels(self) -> list[str]:
        return list(self.routes)

    def route(self, message: ReceivedMessageT) -> CompiledActor | None:
        for actor in self.routes.get(message.channel, ()):
            if actor.matches(message):
                return actor
        return None

    async def dispatch(self, message: ReceivedMessageT) -> ExecutionResult | None:
        """Process `message` with its actor; None when no actor matched (it is then settled
        as unrouted: rejected, or nacked once it has been seen `POISON_THRESHOLD` times)."""
        actor = self.route(message)
        if actor is not None:
            return await actor.process(message)
        await self.unrouted(message)
        return None

    async def unrouted(self, message: ReceivedMessageT) -> None:
        sightings = self.poison.seen(message)
        # One log line per message, at ERROR, when it is given up as poison; the rejects before
        # (it comes back up to POISON_THRESHOLD times, for a worker that has the actor) are
        # logged at DEBUG.
        # Brokers that count deliveries let several workers (and restarts) share the count.
        delivered_before = message.delivery_count
        if delivered_before is not None and delivered_before + 1 > sightings:
            sightings = delivered_before + 1
        # Unrouted messages are rare: the optional-protocol check costs nothing on the hot path.
        broker_limit = message.delivery_limit if isinstance(message, DeliveryLimitT) else None
        threshold = poison_threshold(broker_limit)
        decision = unrouted_decision(sightings, threshold)
        poison = decision.outcome == "nack"
        for observer in self.observers:
            try:
                observer.message_unrouted(message, poison)
            except Exception:
                logger.exception(
                    "observer.failed: %r raised in message_unrouted",
                    observer,
                    extra={"channel": message.channel},
                )
        topic = (message.headers or {}).get("topic")
        extra = {
            "channel": message.channel,
            "message_id": message.message_id,
            "outcome": decision.outcome,
        }
        if poison:
            logger.error(
                "actor.route.poison_message: no actor on channel %r takes the message "
                "(topic=%r, message_id=%r) after %d deliveries; nacking it",
                message.channel,
                topic,
                message.message_id,
                sightings,
                extra=extra,
            )
            self.poison.forget(message)
        else:
            logger.debug(
                "actor.route.not_found: no actor on channel %r takes the message "
                "(topic=%r, message_id=%r); rejecting it (delivery %d; given up as poison at %d)",
                message.channel,
                topic,
                message.message_id,
                sightings,
                threshold,
                extra=extra,
            )
        await settle(message, decision)
