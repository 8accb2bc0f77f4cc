"""What the job layer needs from a message broker, beyond the message layer's `ServerT`.

Every job-layer message broker *is* a message-layer server (it subclasses one), plus:

* `declare_queue(name)` / `is_declared(name)`;
* `publish_job(...)`, which maps a job's priority to the broker's own scale, raises
  `QueueNotDeclaredError` for an undeclared queue, and delays delivery when asked and
  `supports_delayed_publish` is true.

Brokers that cannot delay a delivery leave `supports_delayed_publish` false; the worker then
holds a failed job's message unsettled for the retry delay and publishes the retry before
acking it (see `repid.jobs.middleware`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from repid.connections.abc import MessageData, ServerT
from repid.jobs.priorities import PrioritiesT

__all__ = ["MessageBrokerT"]


@runtime_checkable
class MessageBrokerT(ServerT, Protocol):
    """A message-layer server with the job layer's adapter methods."""

    supports_delayed_publish: bool
    """`publish_job(delay=...)` is honoured by the broker itself."""

    supports_priorities: bool
    """Higher-priority jobs are delivered before lower ones queued at the same time."""

    async def declare_queue(self, name: str) -> None:
        """Create the queue `name` if it does not exist (re-declaring has no effect)."""
        ...

    async def is_declared(self, name: str) -> bool: ...

    async def publish_job(
        self,
        *,
        queue: str,
        message: MessageData,
        priority: PrioritiesT,
        message_id: str,
        unique: bool = False,
        delay: float | None = None,
    ) -> None:
        """Publish a job's message to `queue`; raise `QueueNotDeclaredError` if undeclared.

        `message_id` is the job id; `unique` says it was chosen by the user (`Job(id_=...)`),
        so brokers that can may refuse a duplicate. `delay` (seconds) is only passed when
        `supports_delayed_publish` is true.
        """
        ...
