# ruff: noqa: UP035, F401  (the seed's imports - typing.Callable, unused Any - kept verbatim)
"""Seed 002, "Middlewares": the examples, verbatim.

Each middleware example appears twice in the seed: with PEP 695 syntax (`def f[T](...)`,
Python 3.12+) and with `TypeVar`. The TypeVar versions are module-level code here; the PEP 695
versions are compiled from their source on Python 3.12+ only (this venv is 3.11: skipped).
The middleware classes of "Registering Middlewares" are the user's; they are defined here.
"""

import json
import sys
import textwrap
import uuid
from typing import Any, Callable, Coroutine, TypeVar

import pytest

from repid import ActorData, InMemoryServer, MessageData, ReceivedMessageT, Repid, Router

T = TypeVar("T")


async def logging_middleware(
    call_next: Callable[[ReceivedMessageT, ActorData], Coroutine[None, None, T]],
    message: ReceivedMessageT,
    actor: ActorData,
) -> T:
    print(f"Starting execution for channel: {message.channel}")
    try:
        # call_next invokes the next middleware, and eventually the actor itself
        result = await call_next(message, actor)
        print(f"Finished execution with result: {result}")
        return result
    except Exception as e:
        print(f"Actor raised an exception: {e}")
        raise e


async def producer_tracing_middleware(
    call_next: Callable[
        [str, MessageData, dict[str, object] | None],
        Coroutine[None, None, T],
    ],
    channel: str,
    message: MessageData,
    server_specific_parameters: dict[str, object] | None,
) -> T:
    # Add a default tracking header if not present
    headers = message.headers or {}
    if "X-Trace-Id" not in headers:
        headers["X-Trace-Id"] = str(uuid.uuid4())

    # Create a new message object with updated headers
    message = MessageData(
        payload=message.payload,
        headers=headers,
        content_type=message.content_type,
    )

    print(f"Publishing to '{channel}' with Trace ID: {headers['X-Trace-Id']}")

    # Proceed with the actual publish
    return await call_next(channel, message, server_specific_parameters)


PEP695_ACTOR_MIDDLEWARE = """
from typing import Any, Coroutine, Callable
from repid import ReceivedMessageT, ActorData

async def logging_middleware[T](
    call_next: Callable[[ReceivedMessageT, ActorData], Coroutine[None, None, T]],
    message: ReceivedMessageT,
    actor: ActorData,
) -> T:
    print(f"Starting execution for channel: {message.channel}")
    try:
        # call_next invokes the next middleware, and eventually the actor itself
        result = await call_next(message, actor)
        print(f"Finished execution with result: {result}")
        return result
    except Exception as e:
        print(f"Actor raised an exception: {e}")
        raise e
"""

PEP695_PRODUCER_MIDDLEWARE = """
import uuid
from typing import Any, Coroutine, Callable
from repid import MessageData

async def producer_tracing_middleware[T](
    call_next: Callable[
        [str, MessageData, dict[str, object] | None],
        Coroutine[None, None, T],
    ],
    channel: str,
    message: MessageData,
    server_specific_parameters: dict[str, object] | None,
) -> T:
    # Add a default tracking header if not present
    headers = message.headers or {}
    if "X-Trace-Id" not in headers:
        headers["X-Trace-Id"] = str(uuid.uuid4())

    # Create a new message object with updated headers
    message = MessageData(
        payload=message.payload,
        headers=headers,
        content_type=message.content_type,
    )

    print(f"Publishing to '{channel}' with Trace ID: {headers['X-Trace-Id']}")

    # Proceed with the actual publish
    return await call_next(channel, message, server_specific_parameters)
"""


def _load_pep695(source: str, name: str) -> Any:
    if sys.version_info < (3, 12):
        pytest.skip("PEP 695 generic functions need Python 3.12+")
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), f"<seed002 {name}>", "exec"), namespace)
    return namespace[name]


# --- Actor Middleware ---------------------------------------------------------------------


async def _run_with_actor_middleware(middleware: Any) -> tuple[InMemoryServer, int]:
    app = Repid(actor_middlewares=[middleware])
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="orders")

    @router.actor
    async def total(a: int, b: int) -> int:
        return a + b

    @router.actor
    async def broken() -> None:
        raise ValueError("no stock")

    app.include_router(router)
    async with server.connection():
        await app.send_message_json(
            channel="orders", payload={"a": 2, "b": 3}, headers={"topic": "total"}
        )
        await app.send_message_json(channel="orders", payload={}, headers={"topic": "broken"})
        info = await app.run_worker(messages_limit=2, register_signals=[])
    return server, info.processed


@pytest.mark.parametrize("syntax", ["typevar", "pep695"])
async def test_actor_middleware(syntax: str, capsys: pytest.CaptureFixture[str]) -> None:
    middleware = (
        logging_middleware
        if syntax == "typevar"
        else _load_pep695(PEP695_ACTOR_MIDDLEWARE, "logging_middleware")
    )
    server, processed = await _run_with_actor_middleware(middleware)
    assert processed == 2
    assert capsys.readouterr().out == (
        "Starting execution for channel: orders\n"
        "Finished execution with result: 5\n"
        "Starting execution for channel: orders\n"
        "Actor raised an exception: no stock\n"
    )
    # The re-raised exception reached Repid: the failed message was nacked (auto mode).
    assert [m.headers for m in server.dead_letters["orders"]] == [{"topic": "broken"}]
    assert server.queued("orders") == []


# --- Producer Middleware ------------------------------------------------------------------


@pytest.mark.parametrize("syntax", ["typevar", "pep695"])
async def test_producer_middleware(syntax: str, capsys: pytest.CaptureFixture[str]) -> None:
    middleware = (
        producer_tracing_middleware
        if syntax == "typevar"
        else _load_pep695(PEP695_PRODUCER_MIDDLEWARE, "producer_tracing_middleware")
    )
    app = Repid(producer_middlewares=[middleware])
    server = InMemoryServer()
    app.servers.register_server("default", server)
    async with server.connection():
        await app.send_message_json(channel="events", payload={"n": 1}, headers={"topic": "t"})
        await app.send_message(
            channel="events", payload=b"raw", headers={"X-Trace-Id": "given"}, content_type="x/y"
        )
    first, second = server.queued("events")
    trace = first.headers["X-Trace-Id"]
    uuid.UUID(trace)
    assert first.headers["topic"] == "t"
    assert json.loads(first.payload) == {"n": 1}
    assert first.content_type == "application/json"
    assert second.headers == {"X-Trace-Id": "given"}
    assert second.content_type == "x/y"
    assert capsys.readouterr().out == (
        f"Publishing to 'events' with Trace ID: {trace}\n"
        "Publishing to 'events' with Trace ID: given\n"
    )


async def test_producer_middleware_applies_to_message_send_message() -> None:
    # Added: messages sent from inside an actor go through the app's producer middlewares too.
    app = Repid(producer_middlewares=[producer_tracing_middleware])
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router()
    from repid import Message

    @router.actor
    async def chain(message: Message) -> None:
        await message.send_message(channel="next", payload=b"x", headers={"X-Trace-Id": "abc"})

    app.include_router(router)
    async with server.connection():
        await app.send_message(channel="default", payload=b"{}", headers={"topic": "chain"})
        await app.run_worker(messages_limit=1, register_signals=[])
    (forwarded,) = server.queued("next")
    assert forwarded.headers == {"X-Trace-Id": "abc"}


# --- Registering Middlewares --------------------------------------------------------------

ORDER: list[str] = []


class _Recorder:
    """Base of the user's middleware classes: records when it enters and leaves."""

    label = ""

    async def __call__(self, call_next: Any, *args: Any) -> Any:
        ORDER.append(f"{self.label} in")
        try:
            return await call_next(*args)
        finally:
            ORDER.append(f"{self.label} out")


class MetricsMiddleware(_Recorder):
    label = "metrics"


class LoggingActorMiddleware(_Recorder):
    label = "logging"


class TraceIdProducerMiddleware(_Recorder):
    label = "trace"


class ValidationMiddleware(_Recorder):
    label = "validation"


class SpecificRouterMiddleware(_Recorder):
    label = "router"


class SingleActorMiddleware(_Recorder):
    label = "actor"


async def test_registering_middlewares() -> None:
    from repid import Repid, Router

    # Register on the main app
    app = Repid(
        actor_middlewares=[MetricsMiddleware(), LoggingActorMiddleware()],
        producer_middlewares=[TraceIdProducerMiddleware(), ValidationMiddleware()],
    )

    # Or register specifically on a router
    router = Router(middlewares=[SpecificRouterMiddleware()])

    # Or even a single actor!
    @router.actor(middlewares=[SingleActorMiddleware()])
    async def my_job() -> None:
        pass

    # Added: run it and check the onion order.
    app.include_router(router)
    server = InMemoryServer()
    app.servers.register_server("default", server)
    ORDER.clear()
    async with server.connection():
        await app.send_message_json(channel="default", payload={}, headers={"topic": "my_job"})
        assert ORDER == ["trace in", "validation in", "validation out", "trace out"]
        ORDER.clear()
        await app.run_worker(messages_limit=1, register_signals=[])
    assert ORDER == [
        "metrics in",
        "logging in",
        "router in",
        "actor in",
        "actor out",
        "router out",
        "logging out",
        "metrics out",
    ]
    assert server.queued("default") == []
