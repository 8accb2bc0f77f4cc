"""`Message`: the message being processed, as actors and dependencies see it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from repid.connections.abc import MessageAction, MessageData, ReceivedMessageT
from repid.serializers import SerializerT

__all__ = ["AppT", "Message", "MessageDependency"]

PublishT = Callable[[str, MessageData, "dict[str, Any] | None"], Coroutine[Any, Any, Any]]


class AppT(Protocol):
    """What a `Message` (and the worker) needs of the app it came through (`Repid` is one)."""

    @property
    def default_serializer(self) -> SerializerT: ...

    @property
    def producer_middlewares(self) -> Sequence[Any]: ...

    def wrap_publish(self, endpoint: PublishT) -> PublishT:
        """`endpoint` inside the app's producer middlewares."""
        ...

    async def send_message(
        self,
        *,
        payload: bytes,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        server_name: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None: ...


class MessageDependency:
    """Marker for `Annotated[Any, MessageDependency()]`; annotating with `Message` is the same."""

    __slots__ = ()


class Message:
    """The message an actor is processing, with eager actions and sending helpers.

    Declare a parameter annotated with `Message` to receive it:

        @router.actor
        async def my_actor(user_id: int, message: Message) -> None:
            await message.ack()

    A message is acted on (ack, nack, reject, reply) at most once; later actions are ignored.
    """

    __slots__ = ("_app", "_received", "_server_name")

    def __init__(self, received: ReceivedMessageT, app: AppT, server_name: str | None) -> None:
        self._received = received
        self._app = app
        self._server_name = server_name

    @property
    def raw(self) -> ReceivedMessageT:
        """The server's own message object."""
        return self._received

    @property
    def payload(self) -> bytes:
        """The raw payload bytes, as the broker delivered them."""
        return self._received.payload

    @property
    def headers(self) -> dict[str, str] | None:
        """The message headers (`topic` among them), or None when it has none."""
        return self._received.headers

    @property
    def content_type(self) -> str | None:
        """The content type the sender set (`application/json` for `send_message_json`)."""
        return self._received.content_type

    @property
    def channel(self) -> str:
        """The channel this message was received from."""
        return self._received.channel

    @property
    def message_id(self) -> str | None:
        """The broker's id for the message, if the broker has one."""
        return self._received.message_id

    @property
    def reply_to(self) -> str | None:
        """Where `reply()` sends by default: the channel the sender named, if any."""
        return self._received.reply_to

    @property
    def delivery_count(self) -> int | None:
        """Earlier deliveries of this message (0 the first time), if the broker counts them."""
        return self._received.delivery_count

    @property
    def is_acted_on(self) -> bool:
        """True once the message was acked, nacked, rejected or replied to."""
        return self._received.is_acted_on

    @property
    def action(self) -> MessageAction | None:
        """How the message was settled, or None while it is not."""
        return self._received.action

    async def ack(self) -> None:
        """Acknowledge: processed, the broker forgets it."""
        await self._received.ack()

    async def nack(self) -> None:
        """Negatively acknowledge: failed, the broker dead-letters (or drops) it."""
        await self._received.nack()

    async def reject(self) -> None:
        """Reject: not processed now, back to its queue for another delivery."""
        await self._received.reject()

    async def reply(
        self,
        *,
        payload: bytes,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        channel: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Publish a reply (to `channel`, else the message's reply-to) and acknowledge.

        The reply goes through the app's producer middlewares, like `send_message`.
        """
        received = self._received
        target = channel if channel is not None else received.reply_to
        if not self._app.producer_middlewares or received.is_acted_on or target is None:
            # (A message without a reply channel raises its own clear error.)
            await received.reply(
                payload=payload,
                headers=headers,
                content_type=content_type,
                channel=channel,
                server_specific_parameters=server_specific_parameters,
            )
            return

        async def publish_and_ack(
            channel: str, message: MessageData, params: dict[str, Any] | None
        ) -> None:
            await received.reply(
                payload=message.payload,
                headers=message.headers,
                content_type=message.content_type,
                channel=channel,
                server_specific_parameters=params,
            )

        # Composed per reply: the endpoint is this message's own (atomic) reply.
        chain = self._app.wrap_publish(publish_and_ack)
        data = MessageData(payload, dict(headers) if headers is not None else None, content_type)
        await chain(target, data, server_specific_parameters)

    async def reply_json(
        self,
        *,
        payload: Any,
        headers: dict[str, str] | None = None,
        channel: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """`reply` with `payload` serialized by the app's serializer (JSON by default)."""
        await self.reply(
            payload=self._app.default_serializer(payload),
            headers=headers,
            content_type="application/json",
            channel=channel,
            server_specific_parameters=server_specific_parameters,
        )

    async def send_message(
        self,
        *,
        payload: bytes,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Publish a new message on the server this message came from."""
        await self._app.send_message(
            payload=payload,
            channel=channel,
            operation_id=operation_id,
            headers=headers,
            content_type=content_type,
            server_name=self._server_name,
            server_specific_parameters=server_specific_parameters,
        )

    async def send_message_json(
        self,
        *,
        payload: Any,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Publish a new JSON message on the server this message came from."""
        await self._app.send_message(
            payload=self._app.default_serializer(payload),
            channel=channel,
            operation_id=operation_id,
            headers=headers,
            content_type="application/json",
            server_name=self._server_name,
            server_specific_parameters=server_specific_parameters,
        )

    def __repr__(self) -> str:
        return (
            f"Message(channel={self.channel!r}, message_id={self.message_id!r}, "
            f"action={self.action.value if self.action else None!r})"
        )
