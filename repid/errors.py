"""Exceptions raised by Repid. All derive from `RepidError`."""

from __future__ import annotations

__all__ = [
    "ActorDeclarationError",
    "AppLoadError",
    "BatchPublishError",
    "BatchSendError",
    "BrokerAuthenticationError",
    "BrokerConnectionError",
    "ChannelNotFoundError",
    "ConfigurationError",
    "InvalidConfirmationError",
    "NoServerRegisteredError",
    "NotSupportedByServerError",
    "OperationNotFoundError",
    "PayloadValidationError",
    "RemovedNameError",
    "RepidError",
    "ServerNotConnectedError",
    "ServerNotFoundError",
]


class RepidError(Exception):
    """Base class of Repid's own errors."""


class ActorDeclarationError(RepidError, ValueError):
    """An actor was declared with options that contradict each other or its function."""


class ConfigurationError(RepidError, TypeError):
    """A constructor got options that contradict each other, or a repid 2.x option that has no
    equivalent here (the message says what to use instead)."""


class RemovedNameError(RepidError, ImportError):
    """A repid 2.x name (`repid.X`) with no equivalent here; the message says what to use.

    An ImportError, so that `from repid import X` shows the message.
    """


class PayloadValidationError(RepidError, ValueError):
    """A message's payload or headers do not fit the actor's parameters."""


class InvalidConfirmationError(RepidError, ValueError):
    """A `manual_explicit` actor or an `on_error` callable returned something unusable."""


class NoServerRegisteredError(RepidError, LookupError):
    """An operation needed a server but the app has none registered."""


class ServerNotFoundError(RepidError, KeyError):
    """No server is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ServerNotConnectedError(RepidError, ConnectionError):
    """A server was used before `connect()` (or after `disconnect()`)."""


class OperationNotFoundError(RepidError, KeyError):
    """No operation is registered under the requested operation id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BrokerConnectionError(RepidError, ConnectionError):
    """The broker cannot be reached (down, wrong host or port, TLS or network failure).

    The message names the broker's address, never its credentials.
    """


class BrokerAuthenticationError(BrokerConnectionError):
    """The broker refused the connection's credentials (wrong or missing user or password)."""


class ChannelNotFoundError(RepidError, LookupError):
    """The queue, topic or subscription a channel maps to does not exist on the broker.

    Repid does not create brokers' topology where it belongs to the user (RabbitMQ queues,
    Pub/Sub topics and subscriptions): declare it first.
    """

    def __str__(self) -> str:  # LookupError subclasses may repr() the message
        return str(self.args[0]) if self.args else ""


class NotSupportedByServerError(RepidError, NotImplementedError):
    """The server does not offer this operation (dead-letter inspection, statistics...)."""


class AppLoadError(RepidError):
    """An app path (`package.module:app`) does not import or does not name a `Repid`."""


class BatchPublishError(RepidError):
    """Some messages of one `publish_batch` call were published and some were not.

    Raised by servers' `publish_batch` (see `repid.connections.abc.BatchPublisherT`) when the
    outcome differs between the messages of the call. `message_ids[i]` is the id of message `i`
    (None where it failed or the broker gave none) and `errors[i]` why message `i` failed.
    """

    def __init__(self, message_ids: list[str | None], errors: dict[int, Exception]) -> None:
        self.message_ids = message_ids
        self.errors = errors
        first = min(errors) if errors else None
        detail = f"; message {first}: {errors[first]}" if first is not None else ""
        super().__init__(
            f"{len(errors)} of {len(message_ids)} messages of the batch were not published{detail}"
        )


class BatchSendError(RepidError):
    """`SendResults.raise_on_error()`: some messages of `send_messages` failed.

    `results` is the whole `SendResults`; `failures` the `(index, SendResult)` pairs that
    failed, in order. The first failure's error is the `__cause__`.
    """

    def __init__(self, results: object, failures: list[tuple[int, object]]) -> None:
        self.results = results
        self.failures = failures
        index, first = failures[0]
        super().__init__(
            f"{len(failures)} of {len(results)} messages were not sent "  # type: ignore[arg-type]
            f"(first: message {index} to {first.channel!r}: "  # type: ignore[attr-defined]
            f"{first.error!r})"  # type: ignore[attr-defined]
        )
