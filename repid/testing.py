"""`TestClient`: run an app's actors in-process, without a broker, and inspect the results.

Inside `async with TestClient(app):` every server registered on the app is replaced by an
in-memory one under the same name (the originals come back on exit), so `app.send_message*`
and `message.send_message*` from actors are captured too. Messages are processed by the same
routing and actor pipeline the worker uses.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from repid.app import sending_operation_id
from repid.connections.abc import MessageAction, MessageData
from repid.connections.in_memory import InMemoryServer, StoredMessage
from repid.errors import OperationNotFoundError, RepidError
from repid.worker.dispatcher import Dispatcher

if TYPE_CHECKING:
    from repid.app import Repid
    from repid.connections.abc import ServerT
    from repid.serializers import SerializerT

__all__ = ["ActorNotFoundError", "TestClient", "TestMessage"]

logger = logging.getLogger("repid.testing")

_MAX_AUTO_STEPS = 10_000
_PUBLISH_ORDER = itertools.count()  # shared by every server, so "oldest" spans them all


class ActorNotFoundError(RepidError, LookupError):
    """`TestClient(raise_on_actor_not_found=True)`: a message no actor takes."""


@dataclass(eq=False)
class TestMessage:
    """A message seen by `TestClient`, with what happened to it once processed."""

    __test__ = False  # not a pytest test class

    channel: str
    payload: bytes
    headers: dict[str, str] | None
    content_type: str | None
    message_id: str | None
    server_name: str
    operation_id: str | None = None
    """The operation it was sent with (`send_message(operation_id=...)`), if any."""
    processed: bool = False
    actor_name: str | None = None
    acked: bool = False
    nacked: bool = False
    rejected: bool = False
    replied: bool = False
    result: Any = None
    exception: BaseException | None = None
    _stored: StoredMessage | None = field(default=None, repr=False)

    @property
    def success(self) -> bool:
        """The message was routed to an actor that returned without raising."""
        return self.processed and self.actor_name is not None and self.exception is None


class _RecordingServer(InMemoryServer):
    """An in-memory server that remembers everything published to it."""

    def __init__(self, name: str, original: ServerT | None) -> None:
        super().__init__()
        self.name = name
        self.original = original
        self.sent: list[TestMessage] = []
        # Publish order of every stored message (kept when it is requeued).
        self.sequence: dict[int, int] = {}
        # The operation id each stored message was sent with, when it was sent by operation.
        self.operations: dict[int, str] = {}

    def put(
        self,
        channel: str,
        message: MessageData,
        *,
        message_id: str | None = None,
        priority: int = 0,
    ) -> StoredMessage:
        stored = super().put(channel, message, message_id=message_id, priority=priority)
        self.sequence[id(stored)] = next(_PUBLISH_ORDER)
        operation_id = sending_operation_id()
        if operation_id is not None:
            self.operations[id(stored)] = operation_id
        self.sent.append(
            TestMessage(
                channel=channel,
                payload=stored.payload,
                headers=stored.headers,
                content_type=stored.content_type,
                message_id=stored.message_id,
                server_name=self.name,
                operation_id=operation_id,
                _stored=stored,
            )
        )
        return stored


class TestClient:
    """Send messages to an app and process them in-process.

        async with TestClient(app) as client:
            await client.send_message_json(channel="c", payload={...}, headers={"topic": "a"})
            assert client.get_processed_messages()[0].success

    With `auto_process=True` (the default) every send is followed by processing until no
    routable message is left (a message rejected back to its queue is not retried in the same
    round; call `process_next()` for that). With `auto_process=False` call `process_next()`
    or `process_all()`.

    repid 2.x's switches: `raise_on_actor_error=True` re-raises an actor's exception from the
    call that processed it (by default it is recorded in `TestMessage.exception`);
    `raise_on_actor_not_found=True` raises `ActorNotFoundError` for a message no actor takes
    (by default it is recorded with `actor_name=None`); `raise_on_operation_not_found=False`
    ignores sends to an unknown `operation_id` (by default `OperationNotFoundError`).
    """

    __test__ = False

    def __init__(
        self,
        app: Repid,
        *,
        auto_process: bool = True,
        raise_on_actor_error: bool = False,
        raise_on_actor_not_found: bool = False,
        raise_on_operation_not_found: bool = True,
    ) -> None:
        self.app = app
        self.auto_process = auto_process
        self.raise_on_actor_error = raise_on_actor_error
        self.raise_on_actor_not_found = raise_on_actor_not_found
        self.raise_on_operation_not_found = raise_on_operation_not_found
        self._servers: dict[str, _RecordingServer] = {}
        self._saved: tuple[dict[str, ServerT], str | None] | None = None
        self._dispatchers: dict[str, Dispatcher] = {}
        self._processed: list[TestMessage] = []

    async def __aenter__(self) -> TestClient:
        registry = self.app.servers
        originals = {name: registry[name] for name in registry}
        default = registry.default_name if originals else None
        self._saved = (originals, default)
        names = list(originals) or ["default"]
        self._servers = {name: _RecordingServer(name, originals.get(name)) for name in names}
        registry.replace_all(dict(self._servers), default or "default")
        for server in self._servers.values():
            await server.connect()
        self.app.hold_executors()
        self._dispatchers = {
            name: Dispatcher(self.app.compile_actors(name), self.app.observers_for(name))
            for name in self._servers
        }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers.values():
            await server.disconnect()
        self.app.release_executors()
        if self._saved is not None:
            originals, default = self._saved
            self.app.servers.replace_all(originals, default)
            self._saved = None

    # Sending -------------------------------------------------------------------------------

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
    ) -> None:
        """Send like `app.send_message` (producer middlewares included), then maybe process."""
        self._require_open()
        try:
            await self.app.send_message(
                payload=payload,
                channel=channel,
                operation_id=operation_id,
                headers=headers,
                content_type=content_type,
                server_name=server_name,
                server_specific_parameters=server_specific_parameters,
            )
        except OperationNotFoundError:
            if self.raise_on_operation_not_found:
                raise
            logger.warning(
                "testing.operation_not_found: %r; the message was not sent",
                operation_id,
                extra={"operation_id": operation_id},
            )
            return
        if self.auto_process:
            await self._process_all()

    async def send_message_json(
        self,
        *,
        payload: Any,
        channel: str | None = None,
        operation_id: str | None = None,
        headers: dict[str, str] | None = None,
        server_name: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
        serializer: SerializerT | None = None,
    ) -> None:
        """Send like `app.send_message_json`, then maybe process."""
        await self.send_message(
            payload=(serializer or self.app.default_serializer)(payload),
            channel=channel,
            operation_id=operation_id,
            headers=headers,
            content_type="application/json",
            server_name=server_name,
            server_specific_parameters=server_specific_parameters,
        )

    # Processing ----------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._saved is None:
            raise RuntimeError("use the TestClient inside `async with TestClient(app) as client:`")

    def _next_stored(self, skip: set[int]) -> tuple[_RecordingServer, StoredMessage] | None:
        """The oldest queued message on a channel that has actors (each channel's head is its
        next delivery; across channels, the earliest published wins)."""
        best: tuple[int, _RecordingServer, StoredMessage] | None = None
        for name, server in self._servers.items():
            for channel in self._dispatchers[name].routes:
                for stored in server.queued(channel):
                    if id(stored) in skip:
                        continue
                    rank = server.sequence.get(id(stored), 0)
                    if best is None or rank < best[0]:
                        best = (rank, server, stored)
                    break
        return None if best is None else (best[1], best[2])

    async def process_next(self) -> TestMessage | None:
        """Process the oldest routable queued message; None if there is none."""
        self._require_open()
        found = self._next_stored(set())
        if found is None:
            return None
        return await self._process(*found)

    async def _process_all(self) -> None:
        seen: set[int] = set()
        for _ in range(_MAX_AUTO_STEPS):
            found = self._next_stored(seen)
            if found is None:
                return
            seen.add(id(found[1]))
            await self._process(*found)
        logger.warning(
            "testing.auto_process_limit: stopped after %d messages",
            _MAX_AUTO_STEPS,
            extra={"limit": _MAX_AUTO_STEPS},
        )

    async def _process(self, server: _RecordingServer, stored: StoredMessage) -> TestMessage:
        received = server.take(stored)
        outcome = await self._dispatchers[server.name].dispatch(received)
        record = TestMessage(
            channel=stored.channel,
            payload=stored.payload,
            headers=stored.headers,
            content_type=stored.content_type,
            message_id=stored.message_id,
            server_name=server.name,
            operation_id=server.operations.get(id(stored)),
            processed=True,
            actor_name=outcome.actor.name if outcome is not None and outcome.actor else None,
            acked=received.action in (MessageAction.ACKED, MessageAction.REPLIED),
            nacked=received.action is MessageAction.NACKED,
            rejected=received.action is MessageAction.REJECTED,
            replied=received.action is MessageAction.REPLIED,
            result=outcome.result if outcome is not None else None,
            exception=outcome.exception if outcome is not None else None,
            _stored=stored,
        )
        self._processed.append(record)
        if self.raise_on_actor_error and record.exception is not None:
            raise record.exception
        if self.raise_on_actor_not_found and record.actor_name is None:
            raise ActorNotFoundError(
                f"no actor on channel {record.channel!r} takes the message "
                f"{record.message_id!r} (headers {record.headers!r})"
            )
        return record

    async def process_all(self) -> list[TestMessage]:
        """Process until no routable message is left; return the ones processed now."""
        self._require_open()
        done = len(self._processed)
        await self._process_all()
        return self._processed[done:]

    def clear(self) -> None:
        """Forget the messages sent and processed so far (queued ones stay queued)."""
        self._processed.clear()
        for server in self._servers.values():
            server.sent.clear()

    # Inspection ----------------------------------------------------------------------------

    def _filter(
        self, messages: Sequence[TestMessage], channel: str | None, operation_id: str | None
    ) -> list[TestMessage]:
        if channel is not None and operation_id is not None:
            raise ValueError("filter by channel= or operation_id=, not both")
        if operation_id is not None:
            self.app.messages.get_operation(operation_id)  # an unknown id raises here
            return [m for m in messages if m.operation_id == operation_id]
        return [m for m in messages if channel is None or m.channel == channel]

    def get_sent_messages(
        self, *, channel: str | None = None, operation_id: str | None = None
    ) -> list[TestMessage]:
        """Every message published while the client was open, oldest first.

        `channel=` keeps those published to that channel; `operation_id=` those sent with that
        operation id (several operations may share one channel).
        """
        sent: Sequence[TestMessage] = [m for s in self._servers.values() for m in s.sent]
        return self._filter(sent, channel, operation_id)

    def get_processed_messages(
        self, *, channel: str | None = None, operation_id: str | None = None
    ) -> list[TestMessage]:
        """Every message processed so far, in processing order (filters as for sent ones)."""
        return self._filter(self._processed, channel, operation_id)

    def get_server(self, name: str | None = None) -> InMemoryServer:
        """The in-memory server standing in for `name` (default: the default server)."""
        return self._servers[name or self.app.servers.default_name]
