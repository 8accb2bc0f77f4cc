"""A message received from a Pub/Sub subscription."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repid.connections.base import BaseReceivedMessage

if TYPE_CHECKING:
    from repid.connections.base import Reply
    from repid.connections.pubsub._subscriber import PubsubSubscription

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE_ATTRIBUTE",
    "CONTENT_TYPE_ATTRIBUTE",
    "EMPTY_MARKER_ATTRIBUTE",
    "REPLY_TO_ATTRIBUTE",
    "PubsubReceivedMessage",
]

# The attribute that carries `MessageData.content_type`: repid 2.x's name, so that 2.x workers
# and ours read each other's messages.
CONTENT_TYPE_ATTRIBUTE = "content_type"

# Read as the content type too when `content_type` is absent: the CloudEvents Pub/Sub binding's
# name, so other producers' messages map naturally.
CLOUDEVENTS_CONTENT_TYPE_ATTRIBUTE = "content-type"

# The attribute that carries `MessageData.reply_to` (repid 2.x reads it as `reply_to` too).
REPLY_TO_ATTRIBUTE = "reply_to"

# Pub/Sub refuses a message with neither data nor attributes. An empty payload without headers
# is sent with this attribute instead, and the consumer strips it again.
EMPTY_MARKER_ATTRIBUTE = "repid-empty"


class PubsubReceivedMessage(BaseReceivedMessage):
    """One delivery from a subscription; its ack id settles it.

    `ack` acknowledges. `nack` and `reject` both set the ack deadline to 0, which makes
    Pub/Sub redeliver the message now; with a dead-letter policy on the subscription, Pub/Sub
    moves it to the dead-letter topic after `max_delivery_attempts` such deliveries (dead
    lettering is configured on the subscription, not by the client). `reply` publishes to the
    reply topic first and acks only once the publish succeeded.
    """

    __slots__ = ("_ack_id", "_delivery_attempt", "_message_id", "_state")

    def __init__(
        self,
        *,
        state: PubsubSubscription,
        ack_id: str,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        message_id: str | None,
        delivery_attempt: int,
    ) -> None:
        super().__init__(
            payload=payload, headers=headers, content_type=content_type, channel=state.channel
        )
        self._state = state
        self._ack_id = ack_id
        self._message_id = message_id
        self._delivery_attempt = delivery_attempt

    @property
    def ack_id(self) -> str:
        """The Pub/Sub ack id of this delivery."""
        return self._ack_id

    @property
    def message_id(self) -> str | None:
        return self._message_id

    @property
    def delivery_count(self) -> int | None:
        """Deliveries before this one: `delivery_attempt - 1`.

        Pub/Sub counts attempts only on subscriptions with a dead-letter policy; elsewhere the
        field is 0 and this is None.
        """
        if self._delivery_attempt <= 0:
            return None
        return self._delivery_attempt - 1

    @property
    def delivery_limit(self) -> int | None:
        """The delivery attempts after which Pub/Sub dead-letters this message on its own
        (the subscription's dead-letter policy), None without one or while it is unknown."""
        return self._state.delivery_limit

    async def _ack(self) -> None:
        await self._state.settle_ack(self._ack_id)

    async def _nack(self, reason: str | None) -> None:
        # Pub/Sub keeps no reason: dead lettering is the subscription's policy.
        await self._state.settle_return(self._ack_id)

    async def _reject(self) -> None:
        await self._state.settle_return(self._ack_id)

    async def _reply(self, reply: Reply) -> None:
        # Pub/Sub has no transaction spanning a publish and an ack: publish first, so a crash in
        # between means a redelivery (and a duplicate reply), never a lost reply.
        await self._state.server.publish_raw(
            channel=reply.channel,
            payload=reply.payload,
            headers=reply.headers,
            content_type=reply.content_type,
            server_specific_parameters=reply.server_specific_parameters,
        )
        await self._state.settle_ack(self._ack_id)
