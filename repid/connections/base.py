"""Building blocks shared by the built-in servers (optional for third-party ones)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from repid.connections.abc import MessageAction, ServerCapabilities

__all__ = ["BaseReceivedMessage", "BaseServer", "redact_url"]

logger = logging.getLogger("repid.connections")


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by `***` (for reprs, logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" if user else f":***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class BaseServer:
    """AsyncAPI metadata, the `connection()` context manager and a credential-free repr.

    Subclasses set `protocol`, `host`, `pathname`, `protocol_version` and `capabilities`, and
    implement `connect`, `disconnect`, `is_connected`, `publish` and `subscribe`.
    """

    protocol: str = ""
    protocol_version: str | None = None
    capabilities: ServerCapabilities = ServerCapabilities()

    def __init__(
        self,
        *,
        host: str,
        pathname: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        description: str | None = None,
        variables: Mapping[str, Any] | None = None,
        security: list[Any] | None = None,
        tags: list[Any] | None = None,
        external_docs: Any | None = None,
        bindings: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.pathname = pathname
        self.title = title
        self.summary = summary
        self.description = description
        self.variables = variables
        self.security = security
        self.tags = tags
        self.external_docs = external_docs
        self.bindings = bindings

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, protocol={self.protocol!r})"


class BaseReceivedMessage:
    """Once-only settlement on top of four broker primitives.

    Subclasses implement `_ack`, `_nack`, `_reject` and `_reply`; the public methods make sure
    that a message is acted on once and ignore (with a debug log) any later action.
    """

    __slots__ = ("_action", "_channel", "_content_type", "_headers", "_payload")

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

    def _claim(self, action: MessageAction) -> bool:
        if self._action is not None:
            logger.debug(
                "message.already_acted_on",
                extra={"channel": self._channel, "done": self._action.value, "asked": action.value},
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

    async def nack(self) -> None:
        if self._claim(MessageAction.NACKED):
            try:
                await self._nack()
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
                    channel=target,
                    payload=payload,
                    headers=headers,
                    content_type=content_type,
                    server_specific_parameters=server_specific_parameters,
                )
            except BaseException:
                self._action = None
                raise

    async def _ack(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _nack(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _reject(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _reply(
        self,
        *,
        channel: str,
        payload: bytes,
        headers: dict[str, str] | None,
        content_type: str | None,
        server_specific_parameters: dict[str, Any] | None,
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
