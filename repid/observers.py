"""Observers: hooks on a message's whole life in the worker, for metrics and tracing.

Actor middlewares wrap the actor call and cannot see what happens after it (the settlement
decided by the confirmation mode, a message no actor takes). An observer sees exactly that,
Dramatiq-style, without changing anything:

    class Counting:
        def process_started(self, message, actor):
            return time.perf_counter()          # any state; handed back to process_finished

        def process_finished(self, state, message, actor, outcome, exception, duration):
            ...                                 # outcome: "ack", "nack", "reject", "reply",
                                                # or "no_action" (nothing settled it)

        def message_unrouted(self, message, poison):
            ...                                 # rejected (or nacked when poison)

    app.observers.append(Counting())

`process_started` runs in the message's task right before the middlewares and the actor, and
`process_finished` in the same task right after the message was settled (also when the actor
was cancelled by a shutdown: `exception` is then the `CancelledError`), so an observer may set
a context variable in one and reset it in the other. Observers finish in reverse order. An
observer that raises is logged and skipped; it never changes the message's outcome.
`duration` is in seconds (parse, middlewares, actor and settlement).

The worker and `TestClient` read `app.observers` once, when they compile the actors: with no
observer the per-message path does no extra work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from repid.connections.abc import MessageAction, ReceivedMessageT, ServerT
from repid.data import ActorData

__all__ = [
    "OUTCOME_NAMES",
    "MessageObserverT",
    "ServerBoundT",
    "WorkerLifecycleT",
    "bind_to_server",
    "outcome_of",
]

_T = TypeVar("_T")

OUTCOME_NAMES: dict[MessageAction | None, str] = {
    MessageAction.ACKED: "ack",
    MessageAction.NACKED: "nack",
    MessageAction.REJECTED: "reject",
    MessageAction.REPLIED: "reply",
    None: "no_action",
}
"""The outcome word an observer gets, by the message's final `action`."""


def outcome_of(message: ReceivedMessageT) -> str:
    """The outcome word for `message` as it stands ("no_action" while unsettled)."""
    return OUTCOME_NAMES.get(message.action, "no_action")


class MessageObserverT(Protocol):
    """What the worker calls on every observer in `app.observers` (see the module docstring)."""

    def process_started(self, message: ReceivedMessageT, actor: ActorData) -> Any: ...

    def process_finished(
        self,
        state: Any,
        message: ReceivedMessageT,
        actor: ActorData,
        outcome: str,
        exception: BaseException | None,
        duration: float,
    ) -> None: ...

    def message_unrouted(self, message: ReceivedMessageT, poison: bool) -> None: ...


@runtime_checkable
class WorkerLifecycleT(Protocol):
    """Optional: an observer that wants to know when a worker starts and stops consuming.

    `worker_started` runs in the worker's event loop once its subscription is open (a good
    place to start a background task, or to listen to the subscription's state where the
    server is a `repid.connections.abc.SubscriptionEventsT`); `server_name` is the name the
    server is registered under. `worker_stopped` runs when the worker has shut down.
    """

    def worker_started(self, server: ServerT, channels: list[str], server_name: str) -> None: ...

    async def worker_stopped(self, server: ServerT) -> None: ...


@runtime_checkable
class ServerBoundT(Protocol):
    """Optional: an observer or producer middleware that wants to know its server.

    When the worker compiles its actors, and when a producer chain is composed for a server,
    an item with `for_server` is replaced by `item.for_server(server)` (once, not per
    message), e.g. to name the messaging system in telemetry.
    """

    def for_server(self, server: ServerT) -> Any: ...


def bind_to_server(items: Sequence[_T], server: ServerT | None) -> list[_T]:
    """`items` with every `ServerBoundT` replaced by its `for_server(server)`."""
    if server is None:
        return list(items)
    return [item.for_server(server) if isinstance(item, ServerBoundT) else item for item in items]
