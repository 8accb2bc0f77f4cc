"""`Repid`: the application - servers, operations, routers, sending and the worker."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from repid.asyncapi.models import Contact, ExternalDocs, License, Tag
from repid.connections.abc import MessageData
from repid.dependencies.resolver import ExecutorPools
from repid.errors import ServerNotConnectedError
from repid.middlewares import (
    ActorMiddlewareT,
    ProducerCallT,
    ProducerMiddlewareT,
    compose_producer_middlewares,
)
from repid.observers import bind_to_server
from repid.registry.messages import MessageRegistry
from repid.registry.servers import ServerRegistry
from repid.routing import Router
from repid.sending import OutgoingMessage, Prepared, SendResults, send_prepared
from repid.serializers import SerializerT, default_serializer
from repid.serializers import default_serializer as _default_serializer
from repid.worker.runner import DEFAULT_SIGNALS, RunnerInfo

if TYPE_CHECKING:
    import signal

    from repid.asyncapi.server import AsyncAPIServer
    from repid.asyncapi.settings import AsyncAPIServerSettings
    from repid.connections.abc import ServerT
    from repid.data import ActorData
    from repid.health.settings import HealthCheckServerSettings
    from repid.observers import MessageObserverT
    from repid.worker.actor import CompiledActor
    from repid.worker.runner import Runner

__all__ = ["Repid", "sending_operation_id"]

logger = logging.getLogger("repid")

_BYTES_TYPES = (bytes, bytearray, memoryview)

_sending_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "repid_sending_operation", default=None
)


def sending_operation_id() -> str | None:
    """The operation id of the `send_message(operation_id=...)` being published in this task.

    For producer middlewares and servers that want to know which operation a message belongs
    to (`TestClient` records it; several operations may share one channel). None when the
    send named a channel.
    """
    return _sending_operation.get()


class Repid:
    """A Repid application.

        app = Repid(title="Orders")
        app.servers.register_server("default", InMemoryServer(), is_default=True)
        app.include_router(router)

    `connection` is the job layer's `Connection` (`Repid(Connection(...))`, see `magic()`).
    `title` ... `external_docs` describe the application in its AsyncAPI document.
    `default_serializer` encodes `send_message_json` payloads (JSON by default).
    `actor_middlewares` wrap every actor (outside router and actor middlewares);
    `producer_middlewares` wrap every publish; `observers` see every message's outcome
    (see `repid.observers`; `repid.opentelemetry.instrument` and `repid.prometheus.instrument`
    add theirs).
    """

    def __init__(
        self,
        connection: Any | None = None,
        *,
        title: str = "Repid",
        version: str = "0.0.1",
        description: str | None = None,
        terms_of_service: str | None = None,
        contact: Contact | None = None,
        license: License | None = None,
        tags: Sequence[Tag] | None = None,
        external_docs: ExternalDocs | None = None,
        default_serializer: SerializerT | None = default_serializer,
        actor_middlewares: Sequence[ActorMiddlewareT] | None = None,
        producer_middlewares: Sequence[ProducerMiddlewareT] | None = None,
        observers: Sequence[MessageObserverT] | None = None,
    ) -> None:
        self.connection = connection
        if connection is not None and getattr(connection, "app", False) is None:
            connection.app = self  # the job layer publishes through this app's middlewares
        self.title = title
        self.version = version
        self.description = description
        self.terms_of_service = terms_of_service
        self.contact = contact
        self.license = license
        self.tags = list(tags) if tags is not None else None
        self.external_docs = external_docs
        self.default_serializer: SerializerT = default_serializer or _default_serializer
        self.actor_middlewares: list[ActorMiddlewareT] = list(actor_middlewares or ())
        self.producer_middlewares: list[ProducerMiddlewareT] = list(producer_middlewares or ())
        self.observers: list[MessageObserverT] = list(observers or ())
        self.servers = ServerRegistry()
        self.messages = MessageRegistry()
        self._router = Router()
        self._pools: ExecutorPools | None = None
        self._pool_users = 0
        self._producer_chains: dict[int, tuple[tuple[Any, ...], ServerT, Any]] = {}

    # Job layer: the bound connection ----------------------------------------------------

    def magic(self, *, auto_disconnect: bool = False) -> Any:
        """Bind this app's `Connection` for `Job`, `Queue` and `Worker` created inside.

            async with app.magic():
                await Job("my_job").enqueue()

        Connects the connection if it is not open; disconnects on exit only with
        `auto_disconnect=True` (connections are meant to be long-lived).
        """
        from repid.jobs.magic import magic

        return magic(self, auto_disconnect=auto_disconnect)

    async def magic_connect(self) -> None:
        """Connect and bind this app's `Connection` until `magic_disconnect()`."""
        from repid.jobs.magic import magic_connect

        await magic_connect(self)

    async def magic_disconnect(self) -> None:
        """Unbind and disconnect the connection bound by `magic_connect()`."""
        from repid.jobs.magic import magic_disconnect

        await magic_disconnect(self)

    # Routers -------------------------------------------------------------------------------

    def include_router(self, router: Router) -> None:
        """Register `router`'s actors (and those of routers nested in it)."""
        self._router.include_router(router)

    @property
    def actors(self) -> list[ActorData]:
        """Every actor of the app, defaults resolved, in registration order."""
        return self._router.collect_actors()

    def compile_actors(self, server_name: str | None) -> list[CompiledActor]:
        """Compile every actor for a worker on `server_name` (signatures, converters, chains)."""
        from repid.worker.actor import CompiledActor

        if self._pools is None:
            self._pools = ExecutorPools()
        pools = self._pools
        observers = self.observers_for(server_name)
        return [
            CompiledActor(
                data,
                app=self,
                server_name=server_name,
                app_middlewares=self.actor_middlewares,
                pools=pools,
                observers=observers,
            )
            for data in self.actors
        ]

    def observers_for(self, server_name: str | None) -> list[MessageObserverT]:
        """`observers`, bound to the server `server_name` (see `repid.observers`)."""
        server = (
            self.servers[server_name]
            if server_name is not None and server_name in self.servers
            else None
        )
        return bind_to_server(self.observers, server)

    def shutdown_executors(self) -> None:
        """Stop the thread and process pools that ran sync actors now (made again when needed).

        Workers share the app's pools; each `run_worker` (and `TestClient`) holds them while it
        runs and the last one to finish stops them, so this is only needed for pools used
        outside of those.
        """
        if self._pools is not None:
            self._pools.shutdown()
            self._pools = None
        self._pool_users = 0

    def hold_executors(self) -> None:
        """Keep the sync-actor pools alive until the matching `release_executors()`."""
        self._pool_users += 1

    def release_executors(self) -> None:
        """End one `hold_executors()`; the last one stops the pools (a worker still running
        sync actors on them keeps them)."""
        if self._pool_users > 0:
            self._pool_users -= 1
        if self._pool_users == 0 and self._pools is not None:
            self._pools.shutdown()
            self._pools = None

    # Sending -------------------------------------------------------------------------------

    def _resolve_channel(self, channel: str | None, operation_id: str | None) -> str:
        if operation_id is None:
            if channel is None:
                raise ValueError("send_message needs a destination: pass channel= or operation_id=")
            return channel
        if channel is not None:
            raise ValueError(
                "send_message takes channel= or operation_id=, not both "
                f"(got channel={channel!r}, operation_id={operation_id!r})"
            )
        return self.messages.get_operation(operation_id).channel.address

    def _connected_server(self, server_name: str | None) -> tuple[str, ServerT]:
        name, server = self.servers.resolve(server_name)
        if not server.is_connected:
            raise _not_connected(name, server)
        return name, server

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
        """Publish raw bytes to `channel` (or the channel of `operation_id`).

        Uses the default server unless `server_name` is given; the server must be connected.
        `server_specific_parameters` go to the server's `publish` unchanged.
        """
        if not isinstance(payload, _BYTES_TYPES):
            raise TypeError(
                f"send_message takes bytes, got {type(payload).__name__}; use "
                "send_message_json for objects"
            )
        target = self._resolve_channel(channel, operation_id)
        # Not refused on `is_connected`: that follows the broker connection, and a producer
        # whose broker was restarted must get through again without a reconnect call. A
        # server the user never connected raises ServerNotConnectedError itself.
        name, server = self.servers.resolve(server_name)
        # A copy: middlewares may edit the headers without touching the caller's dict.
        message = MessageData(
            bytes(payload), dict(headers) if headers is not None else None, content_type
        )
        token = _sending_operation.set(operation_id) if operation_id is not None else None
        try:
            if self.producer_middlewares:
                await self._producer_chain(server)(target, message, server_specific_parameters)
            else:
                await server.publish(
                    channel=target,
                    message=message,
                    server_specific_parameters=server_specific_parameters,
                )
        except ServerNotConnectedError:
            raise _not_connected(name, server) from None
        finally:
            if token is not None:
                _sending_operation.reset(token)

    def _producer_chain(self, server: ServerT) -> Any:
        # Composed once per server and middleware list, not per message.
        key = tuple(self.producer_middlewares)
        chains = self._producer_chains
        cached = chains.get(id(server))
        if cached is None or cached[0] != key or cached[1] is not server:
            # Forget the chains of servers no longer registered (a TestClient's stand-ins),
            # so that they and everything they recorded can be freed.
            registered = {id(s) for _, s in self.servers.items()}
            for stale in [k for k in chains if k not in registered]:
                del chains[stale]
            chain = compose_producer_middlewares(bind_to_server(key, server), _publisher(server))
            cached = chains[id(server)] = (key, server, chain)
        return cached[2]

    def wrap_publish(self, endpoint: ProducerCallT) -> ProducerCallT:
        """`endpoint(channel, message, server_specific_parameters)` inside the app's producer
        middlewares (what `Message.reply()` publishes through)."""
        return compose_producer_middlewares(tuple(self.producer_middlewares), endpoint)

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
        """Serialize `payload` (dicts, lists, Pydantic models...) and publish it as JSON.

        `serializer` replaces the app's `default_serializer` for this message.
        """
        await self.send_message(
            payload=(serializer or self.default_serializer)(payload),
            channel=channel,
            operation_id=operation_id,
            headers=headers,
            content_type="application/json",
            server_name=server_name,
            server_specific_parameters=server_specific_parameters,
        )

    async def send_messages(
        self, messages: Iterable[OutgoingMessage], *, server_name: str | None = None
    ) -> SendResults:
        """Publish many raw-bytes messages, to one or several channels, in few round trips.

        Messages are grouped by channel (and `server_specific_parameters`); each group goes
        to the server's `publish_batch` in the given order (`repid.sending` explains the
        details, producer middlewares included). Returns one `SendResult` per message, in
        order: a message the broker refused carries its error and does not stop the others
        (`results.raise_on_error()` raises `BatchSendError` if any failed). A payload that is
        not bytes, a missing channel or a server that is not connected raise before anything
        is sent.
        """
        prepared: list[Prepared] = []
        for message in messages:
            payload = message.payload
            if not isinstance(payload, _BYTES_TYPES):
                raise TypeError(
                    f"send_messages takes bytes payloads, got {type(payload).__name__} (message "
                    f"{len(prepared)}); use send_messages_json for objects"
                )
            headers = message.headers
            prepared.append(
                (
                    self._resolve_channel(message.channel, message.operation_id),
                    MessageData(
                        bytes(payload),
                        dict(headers) if headers is not None else None,
                        message.content_type,
                    ),
                    message.server_specific_parameters,
                )
            )
        return await self._send_prepared(prepared, server_name)

    async def send_messages_json(
        self, messages: Iterable[OutgoingMessage], *, server_name: str | None = None
    ) -> SendResults:
        """`send_messages` for objects: each payload is serialized as `send_message_json` does.

        A payload the serializer refuses raises before anything is sent.
        """
        serialize = self.default_serializer
        resolve = self._resolve_channel
        # Copies only for middlewares (which may edit them); servers encode them at once.
        copy = bool(self.producer_middlewares)
        prepared: list[Prepared] = []
        append = prepared.append
        for message in messages:
            channel = message.channel
            if channel is None or message.operation_id is not None:
                channel = resolve(channel, message.operation_id)
            headers = message.headers
            if copy and headers is not None:
                headers = dict(headers)
            append(
                (
                    channel,
                    MessageData(serialize(message.payload), headers, "application/json"),
                    message.server_specific_parameters,
                )
            )
        return await self._send_prepared(prepared, server_name)

    async def _send_prepared(
        self, prepared: list[Prepared], server_name: str | None
    ) -> SendResults:
        # Not refused on `is_connected` (see `send_message`): a broker that is down shows in
        # each message's result. A server the user never connected refuses every message with
        # ServerNotConnectedError, raised here naming the server.
        name, server = self.servers.resolve(server_name)
        if not prepared:
            return SendResults()
        if not self.producer_middlewares:
            results = await send_prepared(server, prepared, None)
        else:
            results = await send_prepared(
                server,
                prepared,
                lambda collector: compose_producer_middlewares(
                    bind_to_server(tuple(self.producer_middlewares), server), collector
                ),
            )
        if all(isinstance(result.error, ServerNotConnectedError) for result in results):
            raise _not_connected(name, server)
        return results

    # AsyncAPI ------------------------------------------------------------------------------

    def generate_asyncapi_schema(self) -> dict[str, Any]:
        """This app as an AsyncAPI 3.0.0 document (a JSON-ready dict, without credentials)."""
        # The seam to the AsyncAPI layer: it reads this app through a protocol of its own.
        from repid.asyncapi.generator import generate_schema

        return generate_schema(self)

    def asyncapi_html(
        self,
        *,
        sidebar: bool = True,
        info: bool = True,
        servers: bool = True,
        operations: bool = True,
        messages: bool = True,
        schemas: bool = True,
        errors: bool = True,
        expand_message_examples: bool = True,
    ) -> str:
        """An HTML page rendering this app's AsyncAPI document with the AsyncAPI React component.

        The flags choose which sections the component shows.
        """
        from repid.asyncapi.html import render_html

        return render_html(
            self.generate_asyncapi_schema(),
            sidebar=sidebar,
            info=info,
            servers=servers,
            operations=operations,
            messages=messages,
            schemas=schemas,
            errors=errors,
            expand_message_examples=expand_message_examples,
        )

    def asyncapi_server(
        self, server_settings: AsyncAPIServerSettings | None = None
    ) -> AsyncAPIServer:
        """An AsyncAPI docs server for this app, outside a worker (`await server.start()`).

        `run_worker(asyncapi_server=...)` runs one for the worker's lifetime; this is for
        serving the page on its own (repid 2.x's `Repid.asyncapi_server`).
        """
        from repid.asyncapi.server import AsyncAPIServer
        from repid.asyncapi.settings import AsyncAPIServerSettings

        return AsyncAPIServer(server_settings or AsyncAPIServerSettings(), self)

    # The worker ----------------------------------------------------------------------------

    def create_runner(
        self,
        *,
        server_name: str | None = None,
        graceful_shutdown_time: float = 25.0,
        cancellation_timeout: float = 1.0,
        messages_limit: int | None = None,
        tasks_limit: int | None = 1000,
        freeze_startup_heap: bool = True,
    ) -> Runner:
        """Compile the actors and build a worker `Runner` (what `run_worker` runs)."""
        from repid.worker.runner import Runner

        name, server = self._connected_server(server_name)
        actors = self.compile_actors(name)
        # The runner holds the shared sync-actor pools until its run ends (see
        # `release_executors`), so one worker ending does not stop another one's actors.
        self.hold_executors()
        return Runner(
            server=server,
            server_name=name,
            actors=actors,
            tasks_limit=tasks_limit,
            messages_limit=messages_limit,
            graceful_shutdown_time=graceful_shutdown_time,
            cancellation_timeout=cancellation_timeout,
            observers=self.observers_for(name),
            on_finished=self.release_executors,
            freeze_startup_heap=freeze_startup_heap,
        )

    async def run_worker(
        self,
        *,
        graceful_shutdown_time: float = 25.0,
        messages_limit: int | None = None,
        tasks_limit: int | None = 1000,
        register_signals: Sequence[signal.Signals] | None = None,
        health_check_server: HealthCheckServerSettings | None = None,
        asyncapi_server: AsyncAPIServerSettings | None = None,
        server_name: str | None = None,
        cancellation_timeout: float = 1.0,
        freeze_startup_heap: bool = True,
    ) -> RunnerInfo:
        """Consume messages and run actors until a signal arrives or `messages_limit` is hit.

        - `graceful_shutdown_time`: seconds running actors get to finish after a stop signal;
          the rest are cancelled (with `cancellation_timeout` seconds for cleanup) and their
          messages rejected back to the queue.
        - `messages_limit`: stop after processing this many messages (default: never).
        - `tasks_limit`: how many messages run concurrently (default 1000).
        - `register_signals`: signals that start the graceful shutdown (default SIGTERM and
          SIGINT; `[]` disables).
        - `health_check_server`, `asyncapi_server`: start those HTTP servers beside the worker.
        - `server_name`: consume from this server instead of the default one.
        - `freeze_startup_heap`: keep the garbage collector's full passes off the objects that
          exist when the worker starts (`gc.freeze` for the run, undone when it ends; see
          `repid.worker.heap`). Turn it off if objects created before the start become cyclic
          garbage during the run and must be collected before the worker stops.

        The server must be connected when the worker starts; the worker disconnects it at the
        end of its shutdown. (`app.create_runner()` gives a runner that leaves the connection
        open, for running several workers on one connection.)
        """
        runner = self.create_runner(
            server_name=server_name,
            graceful_shutdown_time=graceful_shutdown_time,
            cancellation_timeout=cancellation_timeout,
            messages_limit=messages_limit,
            tasks_limit=tasks_limit,
            freeze_startup_heap=freeze_startup_heap,
        )
        return await self.serve_runner(
            runner,
            register_signals=register_signals,
            health_check_server=health_check_server,
            asyncapi_server=asyncapi_server,
        )

    async def serve_runner(
        self,
        runner: Runner,
        *,
        register_signals: Sequence[signal.Signals] | None = None,
        health_check_server: HealthCheckServerSettings | None = None,
        asyncapi_server: AsyncAPIServerSettings | None = None,
    ) -> RunnerInfo:
        """Run `runner` (from `create_runner`) the way `run_worker` does, then disconnect.

        For programs that need the runner while it runs (progress, supervision): the options
        mean what they mean for `run_worker`.
        """
        signals = DEFAULT_SIGNALS if register_signals is None else tuple(register_signals)
        side_servers = await self._start_side_servers(runner, health_check_server, asyncapi_server)
        try:
            return await runner.run(signals)
        finally:
            for side in side_servers:
                await side.close()
            # Step 4 of the shutdown sequence: close the broker connection. Servers make
            # `disconnect` idempotent, so the enclosing `async with server.connection():`
            # exits cleanly afterwards.
            if runner.server.is_connected:
                try:
                    await runner.server.disconnect()
                except Exception:
                    logger.exception(
                        "worker.shutdown: disconnecting from the broker failed",
                        extra={"server": runner.server_name},
                    )

    async def _start_side_servers(
        self,
        runner: Runner,
        health_check_server: HealthCheckServerSettings | None,
        asyncapi_server: AsyncAPIServerSettings | None,
    ) -> list[Any]:
        started: list[Any] = []
        try:
            if health_check_server is not None:
                from repid.health.server import HealthCheckServer, MetricsSourceT

                metrics = next((o for o in self.observers if isinstance(o, MetricsSourceT)), None)
                health = HealthCheckServer(health_check_server, runner, metrics)
                started.append(await health.start())
            if asyncapi_server is not None:
                from repid.asyncapi.server import AsyncAPIServer

                started.append(await AsyncAPIServer(asyncapi_server, self).start())
        except BaseException:
            for side in started:
                await side.close()
            raise
        return started


def _not_connected(name: str, server: ServerT) -> ServerNotConnectedError:
    return ServerNotConnectedError(
        f"server {name!r} ({server!r}) is not connected: open it first, e.g. "
        f"`async with app.servers[{name!r}].connection(): ...`"
    )


def _publisher(server: ServerT) -> Any:
    async def publish(
        channel: str, message: MessageData, server_specific_parameters: dict[str, Any] | None
    ) -> None:
        await server.publish(
            channel=channel, message=message, server_specific_parameters=server_specific_parameters
        )

    return publish
