"""Building blocks shared by the built-in servers (optional for third-party ones).

* `BaseServer`: the AsyncAPI description, `connection()`, a credential-free repr, the
  registry of its subscriptions (closed and stopped on `disconnect`), and their state changes
  for listeners (`SubscriptionEventsT`: a reconnect, counted once here for every server);
* `BaseReceivedMessage`: once-only settlement over four broker primitives, and the release of
  a message held longer than the server's max lease;
* `BaseSubscriber`: `SubscriptionState` kept true, pause/resume/close, background tasks that
  cannot die unnoticed, and the max-lease watch.

Beside this module: `delivery` (the deliver-while-capacity loop, the lease table), `backoff`
(exponential backoff with jitter), `coalesce` (coalescing of concurrent calls) and `timeouts`
(`asyncio.timeout` on every Python version).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

from repid.connections.abc import (
    DeliveryCapacity,
    MessageAction,
    MessageCallbackT,
    ServerCapabilities,
    ServerDescription,
    SubscriptionListenerT,
    SubscriptionState,
    SubscriptionStateChange,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from repid.connections.delivery import Leases

__all__ = [
    "DEFAULT_MAX_LEASE",
    "BaseReceivedMessage",
    "BaseServer",
    "BaseSubscriber",
    "DescriptionKwargs",
    "Reply",
    "redact_url",
]

logger = logging.getLogger("repid.connections")

DEFAULT_MAX_LEASE = 3600.0
"""Seconds a delivered message may stay unsettled before the server gives it back."""


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by `***` (for reprs, logs and errors).

    The host part is kept as written, so URLs with several hosts (`redis+sentinel://h1,h2/..`)
    work too.
    """
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(
        (parts.scheme, f"{user}:***@{hosts}", parts.path, parts.query, parts.fragment)
    )


class DescriptionKwargs(TypedDict, total=False):
    """The AsyncAPI keywords every built-in server's constructor takes (none may hold secrets)."""

    title: str | None
    summary: str | None
    description: str | None
    variables: Mapping[str, Any] | None
    security: list[Any] | None
    tags: list[Any] | None
    external_docs: Any | None
    bindings: Mapping[str, Any] | None


class BaseServer:
    """AsyncAPI description, `connection()`, a credential-free repr, the subscription registry.

    Subclasses set `protocol`, `protocol_version` and `capabilities`, pass `host` / `pathname`
    and the AsyncAPI keywords up, and implement `connect`, `disconnect`, `is_connected`,
    `publish` and `_open_subscription` (what `subscribe` calls).
    """

    protocol: str = ""
    protocol_version: str | None = None
    capabilities: ServerCapabilities = ServerCapabilities()

    def __init__(
        self,
        *,
        host: str,
        pathname: str | None = None,
        **description: Unpack[DescriptionKwargs],
    ) -> None:
        self.host = host
        self.pathname = pathname
        self.title = description.get("title")
        self.summary = description.get("summary")
        self.description = description.get("description")
        self.variables = description.get("variables")
        self.security = description.get("security")
        self.tags = description.get("tags")
        self.external_docs = description.get("external_docs")
        self.bindings = description.get("bindings")
        self._subscriptions: set[BaseSubscriber] = set()
        self._state_listeners: list[SubscriptionListenerT] = []

    def asyncapi_description(self) -> ServerDescription:
        """This server as an AsyncAPI server object describes it (`DescribedServerT`)."""
        return ServerDescription(
            host=self.host,
            protocol=self.protocol,
            pathname=self.pathname,
            protocol_version=self.protocol_version,
            title=self.title,
            summary=self.summary,
            description=self.description,
            variables=self.variables,
            security=self.security,
            tags=self.tags,
            external_docs=self.external_docs,
            bindings=self.bindings,
        )

    async def connect(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def disconnect(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """Connect on entry and disconnect on exit: `async with server.connection(): ...`."""
        await self.connect()
        try:
            yield self
        finally:
            await self.disconnect()

    async def subscribe(
        self,
        *,
        channels_to_callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> Any:
        """Start delivering `channels_to_callbacks`; returns the running subscription."""
        subscriber = await self._open_subscription(dict(channels_to_callbacks), capacity)
        subscriber.add_state_listener(self._subscription_state_changed)
        # Closed subscriptions whose background work is over are forgotten here, so a server
        # that many short-lived workers use does not collect them.
        self._subscriptions = {s for s in self._subscriptions if not s.finished}
        self._subscriptions.add(subscriber)
        return subscriber

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> BaseSubscriber:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_state_listener(self, listener: SubscriptionListenerT) -> Callable[[], None]:
        """Call `listener` at every state change of this server's subscriptions, those open
        now and those opened later (`SubscriptionEventsT`); returns its remover."""
        return _add_listener(self._state_listeners, listener)

    def _subscription_state_changed(self, change: SubscriptionStateChange) -> None:
        _notify(self._state_listeners, change)

    @property
    def subscriptions(self) -> list[BaseSubscriber]:
        """The subscriptions of this connection that are not stopped yet."""
        return [s for s in self._subscriptions if not s.finished]

    async def _stop_subscriptions(self) -> None:
        """Close every subscription and stop its background work (the connection is ending)."""
        subscriptions, self._subscriptions = self._subscriptions, set()
        for subscriber in subscriptions:
            try:
                await subscriber.stop()
            except Exception:
                logger.exception(
                    "subscription.stop_failed: %r",
                    subscriber,
                    extra={"channels": subscriber.channels},
                )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, protocol={self.protocol!r})"


@dataclass(frozen=True, slots=True)
class Reply:
    """What `BaseReceivedMessage.reply` hands its server to publish."""

    channel: str
    payload: bytes
    headers: dict[str, str] | None
    content_type: str | None
    server_specific_parameters: dict[str, Any] | None


class BaseReceivedMessage:
    """Once-only settlement on top of four broker primitives.

    Subclasses implement `_ack`, `_nack`, `_reject` and `_reply`; the public methods make sure
    that a message is acted on once and ignore (with a debug log) any later action. A message
    held unsettled for longer than its server's max lease is given back (`release_expired`);
    a later action on it is ignored with a warning.
    """

    __slots__ = ("_action", "_channel", "_content_type", "_expired", "_headers", "_payload")

    def __init__(
        self,
        *,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        channel: str,
    ) -> None:
        self._payload = payload
        self._headers = headers
        self._content_type = content_type
        self._channel = channel
        self._action: MessageAction | None = None
        self._expired = False

    @property
    def payload(self) -> bytes:
        return self._payload

    @property
    def headers(self) -> dict[str, str] | None:
        return self._headers

    @property
    def content_type(self) -> str | None:
        return self._content_type

    @property
    def channel(self) -> str:
        return self._channel

    @property
    def message_id(self) -> str | None:
        return None

    @property
    def reply_to(self) -> str | None:
        if self._headers is None:
            return None
        return self._headers.get("reply_to")

    @property
    def delivery_count(self) -> int | None:
        return None

    @property
    def is_acted_on(self) -> bool:
        return self._action is not None

    @property
    def action(self) -> MessageAction | None:
        return self._action

    @property
    def lease_expired(self) -> bool:
        """The server gave this message back because it was held longer than its max lease."""
        return self._expired

    def _claim(self, action: MessageAction) -> bool:
        if self._action is not None:
            if self._expired:
                logger.warning(
                    "message.settled_after_lease: %s of message %r on channel %r ignored: it was "
                    "held longer than the max lease and went back to the queue",
                    action.value,
                    self.message_id,
                    self._channel,
                    extra={"channel": self._channel, "message_id": self.message_id},
                )
            else:
                logger.debug(
                    "message.already_acted_on",
                    extra={
                        "channel": self._channel,
                        "done": self._action.value,
                        "asked": action.value,
                    },
                )
            return False
        self._action = action
        return True

    async def ack(self) -> None:
        if self._claim(MessageAction.ACKED):
            try:
                await self._ack()
            except BaseException:
                self._action = None  # the broker did not take it: the caller may try again
                raise

    async def nack(self, *, reason: str | None = None) -> None:
        if self._claim(MessageAction.NACKED):
            try:
                await self._nack(reason)
            except BaseException:
                self._action = None  # the broker did not take it: the caller may try again
                raise

    async def reject(self) -> None:
        if self._claim(MessageAction.REJECTED):
            try:
                await self._reject()
            except BaseException:
                self._action = None  # the broker did not take it: the caller may try again
                raise

    async def reply(
        self,
        *,
        payload: bytes,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        channel: str | None = None,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        if self._action is not None:
            self._claim(MessageAction.REPLIED)  # logs and ignores, like any second action
            return
        target = channel if channel is not None else self.reply_to
        if target is None:
            raise ValueError(
                f"cannot reply to a message from channel {self._channel!r}: it names no reply "
                "channel (reply_to); pass channel=... to reply()"
            )
        if self._claim(MessageAction.REPLIED):
            try:
                await self._reply(
                    Reply(target, payload, headers, content_type, server_specific_parameters)
                )
            except BaseException:
                self._action = None
                raise

    async def release_expired(self, held_for: float) -> None:
        """Give the message back to its queue: it was held unsettled for `held_for` seconds."""
        if self._action is not None:
            return
        self._action = MessageAction.REJECTED
        self._expired = True
        logger.warning(
            "message.lease_expired: message %r on channel %r was held unsettled for %.1f s, "
            "longer than the max lease; it goes back to the queue",
            self.message_id,
            self._channel,
            held_for,
            extra={"channel": self._channel, "message_id": self.message_id},
        )
        try:
            await self._reject()
        except Exception:
            logger.exception(
                "message.release_failed: message %r on channel %r; the broker redelivers it "
                "by its own timeout",
                self.message_id,
                self._channel,
                extra={"channel": self._channel, "message_id": self.message_id},
            )

    async def _ack(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _nack(self, reason: str | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _reject(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _reply(self, reply: Reply) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class BaseSubscriber:
    """The shared half of the built-in subscribers; implements `SubscriberT`.

    State (`SubscriptionState`): CLOSED after `close()`; FAILED once a background task of the
    subscription died of an unexpected error (it is logged; nothing restarts it); PAUSED while
    paused; RECOVERING from `_mark_recovering()` (the broker connection, a stream or a link was
    lost) until `_mark_recovered()` (the broker delivers or accepts reads again); else ACTIVE.

    Subclasses implement `_on_pause`, `_on_resume`, `_on_close` and `_lease_tables` (their
    tables of delivered, unsettled messages), start their loops with `_spawn`, and call
    `_start_lease_watch()` once running.
    """

    def __init__(
        self,
        *,
        capacity: DeliveryCapacity,
        channels: Iterable[str],
        max_lease: float | None,
        log_name: str,
    ) -> None:
        if max_lease is not None and max_lease <= 0:
            raise ValueError(f"max_lease must be positive or None, got {max_lease!r}")
        self._capacity = capacity
        self._channel_names = list(channels)
        self._max_lease = max_lease
        self._log_name = log_name
        self._paused = False
        self._closed = False
        self._healthy = True
        self._failure: BaseException | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._state_listeners: list[SubscriptionListenerT] = []

    # -- SubscriberT -----------------------------------------------------------------------

    @property
    def state(self) -> SubscriptionState:
        if self._closed:
            return SubscriptionState.CLOSED
        if self._failure is not None:
            return SubscriptionState.FAILED
        if self._paused:
            return SubscriptionState.PAUSED
        if not self._healthy:
            return SubscriptionState.RECOVERING
        return SubscriptionState.ACTIVE

    @property
    def is_active(self) -> bool:
        """True while the subscription is open and not paused."""
        return not self._closed and not self._paused and self._failure is None

    @property
    def channels(self) -> list[str]:
        return list(self._channel_names)

    @property
    def finished(self) -> bool:
        """Closed, and no background work (keep-alives of unsettled messages...) is left."""
        return self._closed and not self._background

    async def pause(self) -> None:
        """Stop delivering; messages already delivered still settle."""
        if self._closed or self._paused:
            return
        previous = self.state
        self._paused = True
        self._state_moved(previous)
        await self._on_pause()

    async def resume(self) -> None:
        if self._closed or not self._paused:
            return
        previous = self.state
        self._paused = False
        self._state_moved(previous)
        await self._on_resume()

    async def close(self) -> None:
        """End the subscription; undelivered messages go back to the broker at once."""
        if self._closed:
            return
        previous = self.state
        self._closed = True
        self._state_moved(previous)
        await self._on_close()

    def add_state_listener(self, listener: SubscriptionListenerT) -> Callable[[], None]:
        """Call `listener` at every change of `state`; returns its remover."""
        return _add_listener(self._state_listeners, listener)

    async def stop(self) -> None:
        """Close, and stop every background task (the server is disconnecting)."""
        await self.close()
        tasks = [t for t in self._background if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._background.clear()

    # -- hooks -----------------------------------------------------------------------------

    async def _on_pause(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _on_resume(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _on_close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _lease_tables(self) -> Iterable[Leases[Any, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- state -----------------------------------------------------------------------------

    def _mark_recovering(self, why: str) -> None:
        """The broker connection (or a stream, a link) was lost: RECOVERING until recovered."""
        if self._healthy and not self._closed:
            previous = self.state
            self._healthy = False
            self._state_moved(previous)
            logger.warning(
                "subscription.recovering: %s subscription of %s: %s",
                self._log_name,
                self._describe_channels(),
                why,
                extra={"channels": self._channel_names, "state": "recovering"},
            )

    def _mark_recovered(self) -> None:
        """The broker delivers or accepts reads again: ACTIVE (unless paused or closed)."""
        if not self._healthy:
            previous = self.state
            self._healthy = True
            self._state_moved(previous)
            if not self._closed:
                logger.info(
                    "subscription.recovered: %s subscription of %s is consuming again",
                    self._log_name,
                    self._describe_channels(),
                    extra={"channels": self._channel_names, "state": "active"},
                )

    def _state_moved(self, previous: SubscriptionState) -> None:
        """Tell the listeners, if the state is not `previous` any more."""
        if not self._state_listeners:
            return
        current = self.state
        if current is not previous:
            change = SubscriptionStateChange(self, tuple(self._channel_names), previous, current)
            _notify(self._state_listeners, change)

    def _describe_channels(self) -> str:
        return ", ".join(repr(c) for c in self._channel_names)

    # -- background work -------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coroutine` as a task of this subscription; if it dies of an error, FAILED."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None or self._closed:
            return
        if self._failure is None:
            previous = self.state
            self._failure = error
            self._state_moved(previous)
        logger.error(
            "subscription.failed: a %s consumer task of %s died: %s: %s; the subscription "
            "delivers nothing more",
            self._log_name,
            self._describe_channels(),
            type(error).__name__,
            error,
            exc_info=error,
            extra={"channels": self._channel_names, "state": "failed"},
        )

    def _start_lease_watch(self) -> None:
        if self._max_lease is not None:
            self._spawn(self._watch_leases(self._max_lease), f"repid-{self._log_name}-leases")

    async def _watch_leases(self, max_lease: float) -> None:
        # Checked a few times per max lease (at least every minute, at most every 50 ms).
        interval = min(60.0, max(0.05, max_lease / 4))
        while True:
            await asyncio.sleep(interval)
            for table in self._lease_tables():
                for message, held_for in table.expired(max_lease):
                    await message.release_expired(held_for)
            if self._closed and not any(self._lease_tables()):
                return


def _add_listener(
    listeners: list[SubscriptionListenerT], listener: SubscriptionListenerT
) -> Callable[[], None]:
    listeners.append(listener)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(listener)

    return remove


def _notify(listeners: list[SubscriptionListenerT], change: SubscriptionStateChange) -> None:
    for listener in tuple(listeners):  # a listener may remove itself
        try:
            listener(change)
        except Exception:
            logger.exception(
                "subscription.listener_failed: state listener %r raised on %s -> %s",
                listener,
                change.previous.value,
                change.current.value,
                extra={"channels": list(change.channels), "state": change.current.value},
            )
