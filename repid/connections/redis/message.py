"""`RedisReceivedMessage`: one stream entry delivered to this worker, with its settlement."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from repid.connections.base import BaseReceivedMessage

if TYPE_CHECKING:
    from repid.connections.base import Reply
    from repid.connections.redis.server import RedisServer
    from repid.connections.redis.subscriber import ChannelState

__all__ = ["RedisReceivedMessage"]

logger = logging.getLogger("repid.connections.redis")


class RedisReceivedMessage(BaseReceivedMessage):
    """A message read from a channel's stream through the consumer group.

    Outcomes (each one atomic, see `repid.connections.redis._scripts`):

    * `ack` - XACK + XDEL in one MULTI/EXEC: the entry is gone for good.
    * `reject` - a copy is XADDed to the end of the same stream (delivery count + 1) and the
      original is XACKed + XDELed, in one Lua script; any worker reads the copy next.
    * `nack` - the same move, to the dead-letter stream `repid:{channel}:dlq`, with the
      reason (see `RedisServer.read_dead_letters` and `RedisServer.replay_dead_letters`); without a
      dead-letter stream (`dlq_stream_strategy=None`) just XACK + XDEL.
    * `reply` - XADD to the reply channel + XACK + XDEL of this entry in one Lua script.
    """

    __slots__ = ("_delivery_count", "_entry_id", "_origin_id", "_reply_to", "_server", "_state")

    def __init__(
        self,
        *,
        server: RedisServer,
        state: ChannelState,
        entry_id: bytes,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        delivery_count: int,
        origin_id: bytes | None = None,
        reply_to: str | None = None,
    ) -> None:
        super().__init__(
            payload=payload, headers=headers, content_type=content_type, channel=state.name
        )
        self._server = server
        self._state = state
        self._entry_id = entry_id
        self._delivery_count = delivery_count
        self._origin_id = origin_id
        self._reply_to = reply_to

    @property
    def reply_to(self) -> str | None:
        """The entry's `reply_to` field (repid 2.x's), else a `reply_to` header."""
        if self._reply_to is not None:
            return self._reply_to
        return super().reply_to

    @property
    def message_id(self) -> str:
        """The message's first stream entry id; it stays the same across rejects and replays."""
        return (self._origin_id or self._entry_id).decode()

    @property
    def entry_id(self) -> str:
        """The id of the stream entry delivered this time (a re-added copy has a new one)."""
        return self._entry_id.decode()

    @property
    def delivery_count(self) -> int:
        """Earlier deliveries of this message: claims after a crash, rejects, and so on."""
        return self._delivery_count

    async def _ack(self) -> None:
        state = self._state
        try:
            await self._server._ack_entry(state.key, state.group, self._entry_id)
        finally:
            # Settled, or failed and left pending: either way stop keeping it alive, so that a
            # failed ack ends with the entry being reclaimed (at-least-once) rather than stuck.
            state.in_flight.discard(self._entry_id)

    async def _nack(self, reason: str | None) -> None:
        state = self._state
        if state.dead_key is None:
            logger.warning(
                "redis.nack_dropped: message %s on channel %r was nacked and dropped: the "
                "server has no dead-letter stream (dlq_stream_strategy=None)",
                self.message_id,
                state.name,
                extra={"channel": state.name, "message_id": self.message_id},
            )
        try:
            await self._server._move_entry(
                state.key,
                state.group,
                state.dead_key,
                self._entry_id,
                extra_deliveries=1,
                reason=reason or "nack",
            )
        finally:
            state.in_flight.discard(self._entry_id)

    async def _reject(self) -> None:
        state = self._state
        try:
            await self._server._move_entry(
                state.key, state.group, state.key, self._entry_id, extra_deliveries=1, reason=""
            )
        finally:
            state.in_flight.discard(self._entry_id)

    async def _reply(self, reply: Reply) -> None:
        state = self._state
        try:
            await self._server._reply_entry(state.key, state.group, self._entry_id, reply)
        finally:
            state.in_flight.discard(self._entry_id)
