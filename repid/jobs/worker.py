"""`Worker`: a router that runs its actors' jobs on the connection's message broker."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from repid.data import ActorData
from repid.jobs.magic import bound_connection, current_connection
from repid.jobs.middleware import JobMiddleware
from repid.routing import Router
from repid.worker.runner import RunnerInfo

if TYPE_CHECKING:
    from repid.jobs.connection import Connection
    from repid.middlewares import ActorMiddlewareT
    from repid.worker.runner import Runner

__all__ = ["Worker"]

logger = logging.getLogger("repid.jobs")

_SERVER_NAME = "jobs"


class Worker(Router):
    """Runs jobs: a `Router` (declare actors on it or include other routers) plus `run()`.

    - `routers`: routers whose actors it runs (same as `include_router` for each).
    - `messages_limit`: stop after this many messages (default None: run until a signal).
    - `graceful_shutdown_time`: seconds running actors get to finish after a stop signal;
      the rest are cancelled and their messages rejected (back to the queue, the attempt is
      not counted).
    - `handle_signals`: the signals that start the graceful shutdown (default SIGINT and
      SIGTERM; `[]` for none).
    - `auto_declare`: declare the actors' queues on `run()` (default True).
    - `_connection`: the `Connection` instead of the one bound by `app.magic()`.
    - `cancel_poll_interval` (keyword): how often, in seconds, the worker reads the
      cancellation marks of its queues (default 0.5; see `repid.jobs.cancellation`).

    An actor added with the name of an existing one replaces it (the last one wins).
    Router-level options (`channel=`, `middlewares=`...) can be passed as keywords.
    """

    def __init__(
        self,
        routers: Sequence[Router] | None = None,
        messages_limit: int | None = None,
        graceful_shutdown_time: float = 25.0,
        handle_signals: Sequence[signal.Signals] | None = None,
        auto_declare: bool = True,
        _connection: Connection | None = None,
        *,
        tasks_limit: int | None = 1000,
        cancel_poll_interval: float = 0.5,
        **router_options: Any,
    ) -> None:
        super().__init__(**router_options)
        for router in routers or ():
            self.include_router(router)
        self.messages_limit = messages_limit
        self.graceful_shutdown_time = graceful_shutdown_time
        self.handle_signals: list[signal.Signals] = (
            [signal.SIGINT, signal.SIGTERM] if handle_signals is None else list(handle_signals)
        )
        self.auto_declare = auto_declare
        self.tasks_limit = tasks_limit
        if cancel_poll_interval <= 0:
            raise ValueError("cancel_poll_interval must be positive")
        self.cancel_poll_interval = cancel_poll_interval
        self._connection = _connection if _connection is not None else bound_connection()
        self._runner: Runner | None = None

    @property
    def connection(self) -> Connection:
        return current_connection(self._connection)

    def collect_actors(
        self,
        inherited: dict[str, Any] | None = None,
        inherited_middlewares: Sequence[ActorMiddlewareT] = (),
    ) -> list[ActorData]:
        """The actors, a later actor replacing an earlier one with the same name."""
        by_name: dict[str, ActorData] = {}
        for actor in super().collect_actors(inherited, inherited_middlewares):
            by_name.pop(actor.name, None)
            by_name[actor.name] = actor
        return list(by_name.values())

    @property
    def queues(self) -> list[str]:
        """The queues the actors listen on, in first-use order."""
        return list(dict.fromkeys(actor.channel for actor in self.actors))

    async def run(self) -> RunnerInfo:
        """Declare the queues (if `auto_declare`), then process jobs until a signal arrives or
        `messages_limit` messages were processed. Returns the run's info (`.processed`).

        A worker without actors has nothing to consume; like any worker it runs until a signal
        arrives (or `stop()` is called).
        """
        from repid.app import Repid

        connection = self.connection
        if not connection.is_open:
            raise RuntimeError(
                "the job connection is not open: use `async with app.magic():` or "
                "`await connection.connect()` before `worker.run()`"
            )
        broker = connection.message_broker
        if self.auto_declare:
            for queue in self.queues:
                await broker.declare_queue(queue)
        owner = connection.app  # the Repid(connection) app: its observers watch the jobs
        middleware = JobMiddleware(connection, cancel_poll_interval=self.cancel_poll_interval)
        app = Repid(
            actor_middlewares=[middleware],
            observers=list(owner.observers) if owner is not None else None,
        )
        app.servers.register_server(_SERVER_NAME, broker, is_default=True)
        app.include_router(self)
        runner = app.create_runner(
            server_name=_SERVER_NAME,
            graceful_shutdown_time=self.graceful_shutdown_time,
            messages_limit=self.messages_limit,
            tasks_limit=self.tasks_limit,
        )
        self._runner = runner
        try:
            await middleware.start(self.queues)
            return await runner.run(self.handle_signals)
        finally:
            self._runner = None
            await middleware.stop()

    def stop(self) -> None:
        """Begin the graceful shutdown of a running `run()` (what SIGTERM does)."""
        if self._runner is not None:
            self._runner.stop()
