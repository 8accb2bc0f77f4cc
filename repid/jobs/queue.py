"""`Queue`: a named queue on the message broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repid.jobs.magic import bound_connection, current_connection

if TYPE_CHECKING:
    from repid.jobs.cancellation import CancelOutcome
    from repid.jobs.connection import Connection

__all__ = ["Queue"]


class Queue:
    """A queue (the message layer's channel) by name; `"default"` unless told otherwise.

    Jobs are enqueued to a queue only after it was declared: `await Queue("q").declare()`
    (declaring again has no effect). A `Worker` declares its actors' queues when it starts.
    """

    __slots__ = ("_connection", "name")

    def __init__(self, name: str = "default", _connection: Connection | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a queue name must be a non-empty string, got {name!r}")
        self.name = name
        self._connection = _connection if _connection is not None else bound_connection()

    @property
    def connection(self) -> Connection:
        """The connection the queue lives on (`_connection`, else the bound one)."""
        return current_connection(self._connection)

    async def declare(self) -> None:
        """Create the queue on the message broker if it does not exist yet."""
        await self.connection.message_broker.declare_queue(self.name)

    async def is_declared(self) -> bool:
        """Whether the queue exists on the message broker."""
        return await self.connection.message_broker.is_declared(self.name)

    async def cancel(self, id_: str, *, due: float | None = None) -> CancelOutcome:
        """Cancel the job `id_` of this queue: take it off the broker if it waits there
        (`CancelOutcome.REMOVED`), else mark it so that a worker drops it on receipt or stops
        it while it runs (`CancelOutcome.MARKED`; see `repid.jobs.cancellation`).

        `due` (a Unix time) is when the job is due, if known: its mark then lasts until 7 days
        after that rather than after now (for a job delayed further than that on a broker
        that cannot remove it). A unique job's claim ends with its cancellation.
        Marking needs the connection's job state (`JobStateNotConfiguredError` otherwise).
        """
        return await self.connection.cancel_job(self.name, id_, due=due)

    def __repr__(self) -> str:
        return f"Queue(name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)
