"""`SqliteServer`: a small Repid server on one SQLite file, written against the broker interface.

The worked example of the documentation's "Write your own server" page. Standard library only
(`sqlite3`), built on the optional building blocks of `repid.connections.base`, and checked by
the same contract suite as the built-in servers (tests/servers).

Storage: one table, one row per message. A row is `ready` (waiting), `held` (delivered to a
subscription, which holds a lease on it until `lease_until` and renews it while the actor
works) or `dead` (nacked, with its reason).

Outcomes:

* `ack` deletes the row;
* `reject` makes it `ready` again; it keeps its place, so it is delivered next;
* `nack` marks it `dead` with the reason (`repid dlq list/replay/purge` work on those rows);
* `reply` inserts the reply and deletes the request in one transaction (`atomic_reply`).

A crashed worker stops renewing its leases: its messages go to another worker once
`visibility_timeout` seconds (default 10) have passed. A message a live worker holds unsettled
for longer than `max_lease` goes back too (the shared lease watch of `BaseSubscriber`).
Several processes on one machine may share the file (WAL journal; every claim is one
`BEGIN IMMEDIATE` transaction, so a message is held by one subscription at a time). New
messages from this server object wake its own subscriptions at once; messages from other
processes are seen within `poll_interval` seconds.

Usage:

    app.servers.register_server("default", SqliteServer("queue.db"), is_default=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from repid.connections.abc import (
    ChannelStats,
    DeadLetter,
    DeliveryCapacity,
    MessageCallbackT,
    MessageData,
    ServerCapabilities,
)
from repid.connections.base import (
    DEFAULT_MAX_LEASE,
    BaseReceivedMessage,
    BaseServer,
    BaseSubscriber,
    Reply,
)
from repid.connections.delivery import DeliveryLoop, Leases, OpenedT
from repid.errors import ServerNotConnectedError

__all__ = ["SqliteReceivedMessage", "SqliteServer"]

logger = logging.getLogger("repid.connections")

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS repid_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    payload BLOB NOT NULL,
    headers TEXT,
    content_type TEXT,
    reply_to TEXT,
    state TEXT NOT NULL DEFAULT 'ready',
    holder TEXT,
    lease_until REAL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS repid_messages_by_channel ON repid_messages (channel, state, id);
"""

_COLUMNS = "id, channel, payload, headers, content_type, reply_to, deliveries"
_Row = tuple[int, str, bytes, str | None, str | None, str | None, int]
"""A claimed row: id, channel, payload, headers (JSON), content type, reply_to, deliveries."""


class _Database:
    """The blocking half: one sqlite3 connection, used only from the server's one thread."""

    def __init__(self, path: str) -> None:
        # isolation_level=None: no implicit transactions; `transaction()` opens them.
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a commit survives a crash of any process; only a power
        # loss may undo the last few (FULL would sync the disk on every ack).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: two processes never claim the same row.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def insert(self, channel: str, messages: Sequence[MessageData]) -> list[str]:
        with self.transaction() as db:
            return [
                str(
                    db.execute(
                        "INSERT INTO repid_messages (channel, payload, headers, content_type, "
                        "reply_to) VALUES (?, ?, ?, ?, ?)",
                        (
                            channel,
                            m.payload,
                            json.dumps(m.headers) if m.headers is not None else None,
                            m.content_type,
                            m.reply_to,
                        ),
                    ).lastrowid
                )
                for m in messages
            ]

    def claim(self, channels: list[str], limit: int, holder: str, lease: float) -> list[_Row]:
        """Hold up to `limit` ready (or abandoned: lease ran out) messages, oldest first."""
        now = time.time()
        marks = ", ".join("?" * len(channels))
        with self.transaction() as db:
            rows: list[_Row] = db.execute(
                f"SELECT {_COLUMNS} FROM repid_messages WHERE channel IN ({marks}) AND "
                "(state = 'ready' OR (state = 'held' AND lease_until < ?)) ORDER BY id LIMIT ?",
                (*channels, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE repid_messages SET state = 'held', holder = ?, lease_until = ?, "
                "deliveries = deliveries + 1 WHERE id = ?",
                [(holder, now + lease, row[0]) for row in rows],
            )
        return rows

    def extend(self, ids: list[int], holder: str, lease: float) -> None:
        until = time.time() + lease
        with self.transaction() as db:
            db.executemany(
                "UPDATE repid_messages SET lease_until = ? WHERE id = ? AND holder = ? "
                "AND state = 'held'",
                [(until, row_id, holder) for row_id in ids],
            )

    def settle(self, row_id: int, holder: str, outcome: str, reason: str | None) -> bool:
        """Ack, reject or nack a held row; False if this holder no longer holds it."""
        held = "WHERE id = ? AND holder = ? AND state = 'held'"
        with self.transaction() as db:
            if outcome == "ack":
                cursor = db.execute(f"DELETE FROM repid_messages {held}", (row_id, holder))
            elif outcome == "reject":
                cursor = db.execute(
                    "UPDATE repid_messages SET state = 'ready', holder = NULL, "
                    f"lease_until = NULL {held}",
                    (row_id, holder),
                )
            else:
                cursor = db.execute(
                    "UPDATE repid_messages SET state = 'dead', holder = NULL, lease_until = NULL, "
                    f"dead_reason = ? {held}",
                    (reason, row_id, holder),
                )
            return cursor.rowcount == 1

    def reply(self, row_id: int, holder: str, reply: Reply) -> bool:
        """Insert the reply and delete the request in one transaction."""
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM repid_messages WHERE id = ? AND holder = ? AND state = 'held'",
                (row_id, holder),
            )
            if cursor.rowcount != 1:
                return False  # not ours any more: no reply either (the request runs again)
            db.execute(
                "INSERT INTO repid_messages (channel, payload, headers, content_type) "
                "VALUES (?, ?, ?, ?)",
                (
                    reply.channel,
                    reply.payload,
                    json.dumps(reply.headers) if reply.headers is not None else None,
                    reply.content_type,
                ),
            )
            return True

    def release(self, ids: Iterable[int] | None, holder: str) -> None:
        """Make this holder's rows ready again (`ids`, or every row it holds)."""
        release = "UPDATE repid_messages SET state = 'ready', holder = NULL, lease_until = NULL "
        with self.transaction() as db:
            if ids is None:
                db.execute(release + "WHERE holder = ? AND state = 'held'", (holder,))
            else:
                db.executemany(
                    release + "WHERE id = ? AND holder = ? AND state = 'held'",
                    [(row_id, holder) for row_id in ids],
                )

    def dead_letters(self, channel: str, limit: int) -> list[DeadLetter]:
        rows = self.db.execute(
            "SELECT id, payload, headers, content_type, dead_reason FROM repid_messages "
            "WHERE channel = ? AND state = 'dead' ORDER BY id LIMIT ?",
            (channel, limit),
        ).fetchall()
        return [
            DeadLetter(
                message_id=str(row_id),
                payload=payload,
                headers=json.loads(headers) if headers is not None else None,
                content_type=content_type,
                reason=reason,
                channel=channel,
            )
            for row_id, payload, headers, content_type, reason in rows
        ]

    def replay(self, channel: str, limit: int | None) -> int:
        with self.transaction() as db:
            return db.execute(
                "UPDATE repid_messages SET state = 'ready', dead_reason = NULL WHERE id IN "
                "(SELECT id FROM repid_messages WHERE channel = ? AND state = 'dead' "
                "ORDER BY id LIMIT ?)",
                (channel, -1 if limit is None else limit),
            ).rowcount

    def purge(self, channel: str) -> int:
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM repid_messages WHERE channel = ? AND state = 'dead'", (channel,)
            ).rowcount

    def counts(self, channel: str) -> dict[str, int]:
        now = time.time()
        rows = self.db.execute(
            "SELECT CASE WHEN state = 'held' AND lease_until < ? THEN 'ready' ELSE state END, "
            "count(*) FROM repid_messages WHERE channel = ? GROUP BY 1",
            (now, channel),
        ).fetchall()
        return dict(rows)

    def close(self) -> None:
        self.db.close()


class SqliteReceivedMessage(BaseReceivedMessage):
    """A delivery from `SqliteServer`: settling it updates its row (if still held by us)."""

    __slots__ = ("_deliveries", "_reply_to", "_row_id", "_subscriber")

    def __init__(self, row: _Row, subscriber: _Subscriber) -> None:
        row_id, channel, payload, headers, content_type, reply_to, deliveries = row
        super().__init__(
            payload=payload,
            headers=json.loads(headers) if headers is not None else None,
            content_type=content_type,
            channel=channel,
        )
        self._row_id = row_id
        self._reply_to = reply_to
        self._deliveries = deliveries
        self._subscriber = subscriber

    @property
    def message_id(self) -> str | None:
        return str(self._row_id)

    @property
    def reply_to(self) -> str | None:
        return self._reply_to if self._reply_to is not None else super().reply_to

    @property
    def delivery_count(self) -> int | None:
        return self._deliveries  # deliveries before this one (the claim counted this one)

    async def _ack(self) -> None:
        await self._subscriber.settle(self, "ack", None)

    async def _nack(self, reason: str | None) -> None:
        await self._subscriber.settle(self, "nack", reason)

    async def _reject(self) -> None:
        await self._subscriber.settle(self, "reject", None)

    async def _reply(self, reply: Reply) -> None:
        await self._subscriber.settle(self, "reply", None, reply)


class _Subscriber(BaseSubscriber):
    """Claims rows while the worker has free slots and hands them over in order."""

    def __init__(
        self,
        server: SqliteServer,
        callbacks: Mapping[str, MessageCallbackT],
        capacity: DeliveryCapacity,
    ) -> None:
        super().__init__(
            capacity=capacity, channels=callbacks, max_lease=server.max_lease, log_name="sqlite"
        )
        self._server = server
        self._callbacks = dict(callbacks)
        self._holder = uuid.uuid4().hex  # whose lease a held row is
        self.leases: Leases[int, SqliteReceivedMessage] = Leases()
        self.wakeup = asyncio.Event()
        self._delivery = DeliveryLoop(capacity, self._open, source="sqlite")
        self._consumer = self._spawn(self._consume(), "repid-sqlite-consume")
        self._spawn(self._renew(), "repid-sqlite-renew")
        self._start_lease_watch()

    def _open(self, row: _Row) -> OpenedT:
        message = SqliteReceivedMessage(row, self)
        self.leases.add(message._row_id, message)
        return message, self._callbacks[message.channel]

    async def _consume(self) -> None:
        server, delivery = self._server, self._delivery
        channels = list(self._callbacks)
        while not self._closed:
            if self._paused:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            free = await self._capacity.wait_for_free()
            self.wakeup.clear()
            try:
                rows = await server.call(
                    server.db.claim, channels, min(free, 100), self._holder, server.visibility
                )
            except sqlite3.Error as exc:  # locked for longer than the timeout, disk full...
                self._mark_recovering(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
                continue
            self._mark_recovered()
            if not rows:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), server.poll_interval)
                continue
            delivery.buffer.extend(rows)
            await delivery.deliver_available()
            if delivery.buffer:  # paused or closed while delivering: give the rest back
                left = [row[0] for row in delivery.buffer]
                delivery.buffer.clear()
                await server.call(server.db.release, left, self._holder)

    async def _renew(self) -> None:
        # Renewed three times per visibility timeout: a live worker never loses a lease.
        server = self._server
        while not (self._closed and not self.leases):
            await asyncio.sleep(server.visibility / 3)
            if self.leases:
                try:
                    await server.call(
                        server.db.extend, list(self.leases), self._holder, server.visibility
                    )
                except sqlite3.Error:
                    logger.exception("sqlite.renew_failed", extra={"channels": self.channels})

    async def settle(
        self,
        message: SqliteReceivedMessage,
        outcome: str,
        reason: str | None,
        reply: Reply | None = None,
    ) -> None:
        server = self._server
        if reply is not None:
            held = await server.call(server.db.reply, message._row_id, self._holder, reply)
        else:
            held = await server.call(
                server.db.settle, message._row_id, self._holder, outcome, reason
            )
        self.leases.discard(message._row_id)
        if not held:
            logger.warning(
                "sqlite.lease_lost: message %s on %r was no longer held by this worker (its "
                "lease ran out or the subscription closed); the %s is ignored and the message "
                "is delivered again",
                message.message_id,
                message.channel,
                outcome,
                extra={"channel": message.channel, "message_id": message.message_id},
            )

    async def _on_pause(self) -> None:
        self._delivery.pause()

    async def _on_resume(self) -> None:
        self._delivery.resume()
        self.wakeup.set()

    async def _on_close(self) -> None:
        self._delivery.close()
        self.wakeup.set()
        if not self._delivery.delivering:
            self._consumer.cancel()  # it may wait for a free slot or for new rows
        # Whatever this subscription still holds goes back now, as when a consumer goes away.
        self.leases.clear()
        try:
            await self._server.call(self._server.db.release, None, self._holder)
        except sqlite3.Error:
            logger.exception("sqlite.release_failed", extra={"channels": self.channels})

    def _lease_tables(self) -> Iterable[Leases[int, SqliteReceivedMessage]]:
        return (self.leases,)


class SqliteServer(BaseServer):
    """A broker in one SQLite file. See the module docstring for its outcomes.

    `path`: the database file (created if missing). `visibility_timeout`: seconds after which
    a message held by a worker that stopped renewing (crashed) goes to another worker.
    `poll_interval`: how often an idle subscription looks for messages from other processes.
    `max_lease`: seconds a message may stay unsettled in a live worker (None: forever).
    No server-specific parameters: `publish` refuses any.
    """

    protocol = "sqlite"
    capabilities = ServerCapabilities(
        atomic_reply=True, dead_letter=True, persistent=True, distributed=True
    )

    def __init__(
        self,
        path: str | Path,
        *,
        visibility_timeout: float = 10.0,
        poll_interval: float = 0.1,
        max_lease: float | None = DEFAULT_MAX_LEASE,
        title: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(host="localhost", pathname=str(path), title=title, description=description)
        if visibility_timeout <= 0 or poll_interval <= 0:
            raise ValueError("visibility_timeout and poll_interval must be positive")
        self.path = str(path)
        self.visibility = visibility_timeout
        self.poll_interval = poll_interval
        self.max_lease = max_lease
        self._executor: ThreadPoolExecutor | None = None
        self._db: _Database | None = None

    # -- the connection ---------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> _Database:
        """The open database (raises `ServerNotConnectedError` before `connect()`)."""
        if self._db is None:
            raise ServerNotConnectedError(
                f"SqliteServer({self.path!r}) is not connected: use "
                "`async with server.connection():` (or `await server.connect()`) first"
            )
        return self._db

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking database call on the server's own thread."""
        executor = self._executor
        if executor is None:
            raise ServerNotConnectedError(f"SqliteServer({self.path!r}) is not connected")
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    async def connect(self) -> None:
        if self._db is not None:
            return
        # One thread owns the sqlite3 connection; the event loop never blocks on the file.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repid-sqlite")
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(executor, _Database, self.path)
        self._executor = executor

    async def disconnect(self) -> None:
        if self._db is None:
            return
        await self._stop_subscriptions()
        executor, database = self._executor, self._db
        assert executor is not None
        await asyncio.get_running_loop().run_in_executor(executor, database.close)
        self._db = self._executor = None
        executor.shutdown(wait=False)

    # -- publishing (ServerT, BatchPublisherT) ----------------------------------------------

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        await self.publish_batch(
            channel=channel,
            messages=[message],
            server_specific_parameters=server_specific_parameters,
        )

    async def publish_batch(
        self,
        *,
        channel: str,
        messages: Sequence[MessageData],
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> list[str]:
        """Insert `messages` in one transaction; their row ids are their message ids."""
        if server_specific_parameters:
            raise ValueError(
                f"SqliteServer takes no server_specific_parameters, got "
                f"{sorted(server_specific_parameters)}"
            )
        ids = await self.call(self.db.insert, channel, list(messages))
        for subscriber in self.subscriptions:
            if isinstance(subscriber, _Subscriber) and channel in subscriber.channels:
                subscriber.wakeup.set()
        return ids

    # -- consuming --------------------------------------------------------------------------

    async def _open_subscription(
        self, callbacks: dict[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> _Subscriber:
        if self._db is None:
            raise ServerNotConnectedError(
                f"SqliteServer({self.path!r}) is not connected: call `await server.connect()` first"
            )
        return _Subscriber(self, callbacks, capacity)

    # -- optional admin protocols (DeadLetterStoreT, ChannelStatsT) -------------------------

    async def read_dead_letters(
        self, channel: str, *, limit: int = 100, dead_letter_queue: str | None = None
    ) -> list[DeadLetter]:
        """Up to `limit` of `channel`'s dead letters, oldest first."""
        return await self.call(self.db.dead_letters, channel, limit)

    async def replay_dead_letters(
        self, channel: str, *, limit: int | None = None, dead_letter_queue: str | None = None
    ) -> int:
        """Make dead letters (oldest first; all, or `limit`) ready again; return how many."""
        return await self.call(self.db.replay, channel, limit)

    async def purge_dead_letters(
        self, channel: str, *, dead_letter_queue: str | None = None
    ) -> int:
        return await self.call(self.db.purge, channel)

    async def channel_stats(self, channel: str) -> ChannelStats:
        counts = await self.call(self.db.counts, channel)
        return ChannelStats(
            channel=channel,
            depth=counts.get("ready", 0),
            in_flight=counts.get("held", 0),
            dead_letters=counts.get("dead", 0),
            consumers=None,  # other processes' subscriptions are not recorded in the file
        )
