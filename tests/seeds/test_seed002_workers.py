"""Seed 002, "Workers", "Built-in Servers" (health check), "Concurrency limit" and "Worker
Lifecycle & Production": the examples, verbatim, on the in-memory broker.

`AmqpServer("amqp://localhost")` becomes `InMemoryServer()` (the examples are about the worker).
Workers that "block forever" are stopped the documented way, with a signal. Examples with
25-120 s grace periods run on a loop with virtual time (`run_with_fast_clock`).
"""

import asyncio
import json
import signal

import pytest

from repid import HealthCheckServerSettings, InMemoryServer, Repid, Router

from ._support import run_with_fast_clock, send_signal, signal_guard, wait_until

# --- Running a Worker (worker.py) -----------------------------------------------------------


async def test_running_a_worker(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from repid import Repid, Router

    app = Repid()
    app.servers.register_server(
        "default",
        InMemoryServer(),  # seed: AmqpServer("amqp://localhost")
        is_default=True,
    )
    router = Router()

    @router.actor(channel="user_events")
    async def process_user_event(event_type: str):
        print(f"Event: {event_type}")

    app.include_router(router)

    async def main():
        async with app.servers.default.connection():
            await app.run_worker()

    # Added: a producer enqueues two events; the worker runs until SIGTERM.
    server = app.servers.default
    async with server.connection():
        for event in ("signup", "login"):
            await app.send_message_json(
                channel="user_events",
                payload={"event_type": event},
                headers={"topic": "process_user_event"},
            )
    output: list[str] = []
    with signal_guard(signal.SIGTERM) as fallback_hits:
        worker = asyncio.create_task(main())  # seed: asyncio.run(main())
        await wait_until(
            lambda: output.append(capsys.readouterr().out) or "".join(output).count("Event") == 2,
            "both events",
        )
        send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker, 30)
    assert fallback_hits == []
    assert "".join(output) == "Event: signup\nEvent: login\n"
    assert server.queued("user_events") == []


# --- Messages Limit -----------------------------------------------------------------------


async def test_messages_limit() -> None:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="jobs")
    done: list[int] = []

    @router.actor
    async def job(n: int) -> None:
        done.append(n)

    app.include_router(router)
    async with server.connection():
        for n in range(1005):
            await app.send_message_json(channel="jobs", payload={"n": n}, headers={"topic": "job"})

        # Worker will exit successfully after processing exactly 1000 messages
        info = await app.run_worker(messages_limit=1000)

        # Added: exactly 1000 processed, the rest still queued.
        assert info.processed == 1000
        assert sorted(done) == list(range(1000))
        assert [json.loads(m.payload)["n"] for m in server.queued("jobs")] == [
            1000,
            1001,
            1002,
            1003,
            1004,
        ]
    # "returns control back to your script": a later run picks up the rest.
    async with server.connection():
        info = await app.run_worker(messages_limit=5, register_signals=[])
        assert info.processed == 5
    assert server.queued("jobs") == []


# --- Health Check Server ------------------------------------------------------------------


def test_health_check_settings_verbatim() -> None:
    from repid import HealthCheckServerSettings

    settings = HealthCheckServerSettings(
        address="0.0.0.0",
        port=8080,
        endpoint_name="/healthz",
    )
    assert (settings.address, settings.port, settings.endpoint_name) == (
        "0.0.0.0",
        8080,
        "/healthz",
    )


async def _http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_health_check_server() -> None:
    # The example binds 0.0.0.0:8080; tests bind loopback only, on a free port.
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router()

    @router.actor
    async def noop() -> None:
        pass

    app.include_router(router)
    port = _free_port()
    async with server.connection():
        worker = asyncio.create_task(
            app.run_worker(
                health_check_server=HealthCheckServerSettings(
                    address="127.0.0.1",
                    port=port,
                    endpoint_name="/healthz",
                ),
                register_signals=[],
            )
        )
        try:
            status = None
            for _ in range(400):
                if worker.done():
                    worker.result()  # surfaces the worker's error
                try:
                    status, _ = await _http_get(port, "/healthz")
                    break
                except OSError:
                    await asyncio.sleep(0.01)
            assert status == 200
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
    # after the worker stopped, nothing listens there any more
    with pytest.raises(OSError):
        await _http_get(port, "/healthz")


# --- Concurrency limit --------------------------------------------------------------------


async def test_concurrency_limit() -> None:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="bulk")
    release = asyncio.Event()
    running = [0, 0]  # now, peak
    finished: list[int] = []

    @router.actor
    async def hold(n: int) -> None:
        running[0] += 1
        running[1] = max(running[1], running[0])
        await release.wait()
        running[0] -= 1
        finished.append(n)

    app.include_router(router)
    async with server.connection():
        for n in range(2100):
            await app.send_message_json(channel="bulk", payload={"n": n}, headers={"topic": "hold"})

        async def worker_main():
            # Cap the worker at processing up to 2000 messages concurrently
            await app.run_worker(tasks_limit=2000)

        with signal_guard(signal.SIGTERM) as fallback_hits:
            worker = asyncio.create_task(worker_main())
            await wait_until(lambda: running[0] == 2000, "2000 running actors")
            for _ in range(20):
                await asyncio.sleep(0)
            assert running[1] == 2000  # never more than the limit
            assert len(server.queued("bulk")) == 100  # the rest waits on the broker
            release.set()
            await wait_until(lambda: len(finished) == 2100, "all messages")
            assert running[1] == 2000
            send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker, 30)
        assert fallback_hits == []
    assert server.queued("bulk") == []


async def test_default_tasks_limit_is_1000() -> None:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="bulk")
    release = asyncio.Event()
    running = [0]

    @router.actor
    async def hold() -> None:
        running[0] += 1
        await release.wait()

    app.include_router(router)
    async with server.connection():
        for _ in range(1010):
            await app.send_message_json(channel="bulk", payload={}, headers={"topic": "hold"})
        worker = asyncio.create_task(app.run_worker(messages_limit=1010, register_signals=[]))
        await wait_until(lambda: running[0] == 1000, "1000 running actors")
        for _ in range(20):
            await asyncio.sleep(0)
        assert running[0] == 1000
        release.set()
        info = await asyncio.wait_for(worker, 30)
    assert info.processed == 1010


# --- The Worker Loop (worker.py importing the user's app) -----------------------------------


async def test_the_worker_loop() -> None:
    import asyncio

    from .myapp.worker_app import (
        app,  # seed: from app import app  # your Repid app instance
        handled,  # added: what the user's actor recorded
    )

    async def main():
        async with app.servers.default.connection():
            # Starts the worker event loop and blocks until shutdown signal
            await app.run_worker()

    server = app.servers.default
    async with server.connection():
        for n in range(3):
            await app.send_message_json(
                channel="lifecycle", payload={"n": n}, headers={"topic": "handle"}
            )
    with signal_guard(signal.SIGTERM) as fallback_hits:
        worker = asyncio.create_task(main())  # seed: asyncio.run(main())
        await wait_until(lambda: len(handled) == 3, "three messages")
        send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker, 30)
    assert fallback_hits == []
    assert sorted(handled) == [0, 1, 2]
    assert server.is_connected is False


# --- Graceful Shutdowns ---------------------------------------------------------------------


def _shutdown_app(cleanup: float = 0.5) -> tuple[Repid, InMemoryServer, dict[str, list]]:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="work")
    log: dict[str, list] = {"started": [], "finished": [], "cleaned": []}

    @router.actor
    async def sleeper(seconds: float) -> None:
        log["started"].append(seconds)
        try:
            await asyncio.sleep(seconds)
            log["finished"].append(seconds)
        finally:
            # "a brief moment (cancellation_timeout, defaulting to 1s) to run any finally blocks"
            await asyncio.sleep(cleanup)
            log["cleaned"].append(seconds)

    app.include_router(router)
    return app, server, log


async def _publish_sleepers(app: Repid, *seconds: float) -> None:
    for s in seconds:
        await app.send_message_json(
            channel="work",
            payload={"seconds": s},
            headers={"topic": "sleeper"},
            server_specific_parameters={"message_id": f"sleep-{s}"},
        )


def _shutdown_scenario(app, server, log, run_worker, sleepers, late):
    """Start `run_worker()`, wait until every sleeper runs, SIGTERM, publish `late` during the
    grace period, wait for the worker to return."""

    async def scenario():
        async with server.connection():
            await _publish_sleepers(app, *sleepers)
            with signal_guard(signal.SIGTERM) as fallback_hits:
                worker = asyncio.create_task(run_worker())
                await wait_until(lambda: len(log["started"]) == len(sleepers), "actors running")
                send_signal(signal.SIGTERM)
                await asyncio.sleep(1)  # 1 s of loop time: the worker has paused
                await _publish_sleepers(app, *late)
                info = await worker
            return info, fallback_hits, [m.message_id for m in server.queued("work")]

    return run_with_fast_clock(scenario)


def test_graceful_shutdown_default_25_seconds() -> None:
    app, server, log = _shutdown_app()

    async def run_worker():
        return await app.run_worker()

    info, fallback_hits, queued = _shutdown_scenario(
        app, server, log, run_worker, sleepers=(20.0, 30.0), late=(1.0,)
    )
    assert fallback_hits == []
    assert log["finished"] == [20.0]  # finished within the 25 s grace period: acked
    assert sorted(log["cleaned"]) == [20.0, 30.0]  # the cancelled one ran its finally block
    assert info.processed == 1
    # 1. paused: the message published after SIGTERM was not consumed;
    # 3. the cancelled actor's message was rejected back to the queue.
    assert sorted(queued) == ["sleep-1.0", "sleep-30.0"]
    assert server.dead_letters == {}


def test_configuring_the_shutdown_timeout() -> None:
    app, server, log = _shutdown_app()

    async def run_worker():
        return await app.run_worker(
            graceful_shutdown_time=120.0  # Wait up to 2 minutes
        )

    info, fallback_hits, queued = _shutdown_scenario(
        app, server, log, run_worker, sleepers=(30.0, 100.0, 200.0), late=()
    )
    assert fallback_hits == []
    assert sorted(log["finished"]) == [30.0, 100.0]
    assert info.processed == 2
    assert queued == ["sleep-200.0"]
    assert 200.0 in log["cleaned"]


# --- Custom Shutdown Signals --------------------------------------------------------------


async def test_custom_shutdown_signals() -> None:
    app, server, log = _shutdown_app(cleanup=0)
    async with server.connection():
        await _publish_sleepers(app, 0.0)

        async def main():
            import signal

            return await app.run_worker(register_signals=[signal.SIGUSR1])

        with signal_guard(signal.SIGTERM) as term_hits, signal_guard(signal.SIGUSR1) as usr1_hits:
            worker = asyncio.create_task(main())
            await wait_until(lambda: log["cleaned"] == [0.0], "the actor ran")
            send_signal(signal.SIGTERM)  # not registered: the worker ignores it
            for _ in range(20):
                await asyncio.sleep(0.005)
            assert not worker.done()
            assert term_hits == [signal.SIGTERM]
            send_signal(signal.SIGUSR1)
            info = await asyncio.wait_for(worker, 30)
        assert usr1_hits == []
    assert info.processed == 1


async def test_disable_signals() -> None:
    app, server, log = _shutdown_app(cleanup=0)
    async with server.connection():
        await _publish_sleepers(app, 0.0)

        async def main():
            return await app.run_worker(
                register_signals=[]  # No signals will trigger graceful shutdown
            )

        with signal_guard(signal.SIGTERM) as term_hits, signal_guard(signal.SIGINT) as int_hits:
            worker = asyncio.create_task(main())
            await wait_until(lambda: log["cleaned"] == [0.0], "the actor ran")
            send_signal(signal.SIGTERM)
            send_signal(signal.SIGINT)
            for _ in range(20):
                await asyncio.sleep(0.005)
            assert not worker.done()
            assert term_hits == [signal.SIGTERM]
            assert int_hits == [signal.SIGINT]
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker


def test_cancellation_timeout_bounds_cleanup() -> None:
    # Step 3: cancelled actors get `cancellation_timeout` (1 s) for their finally blocks; the
    # worker does not wait longer, and their messages are rejected meanwhile.
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)
    router = Router(channel="work")
    log: list[str] = []

    @router.actor
    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(1000)
        finally:
            log.append("cleanup started")
            await asyncio.sleep(5)  # longer than cancellation_timeout
            log.append("cleanup finished")

    app.include_router(router)

    async def scenario():
        async with server.connection():
            await app.send_message_json(
                channel="work", payload={}, headers={"topic": "slow_cleanup"}
            )
            runner_done = asyncio.Event()

            async def run():
                try:
                    return await app.run_worker(graceful_shutdown_time=2.0)
                finally:
                    runner_done.set()

            with signal_guard(signal.SIGTERM):
                worker = asyncio.create_task(run())
                await wait_until(lambda: len(server.queued("work")) == 0, "delivery")
                await asyncio.sleep(0.1)
                send_signal(signal.SIGTERM)
                started = asyncio.get_running_loop().time()
                await worker
                elapsed = asyncio.get_running_loop().time() - started
            return elapsed, list(log), [m.headers for m in server.queued("work")]

    elapsed, log_at_return, queued = run_with_fast_clock(scenario)
    # virtual time: exactly the grace period plus the cancellation timeout, not the 5 s cleanup
    assert 3.0 <= elapsed < 4.0
    assert log_at_return == ["cleanup started"]
    assert queued == [{"topic": "slow_cleanup"}]


async def test_sigint_stops_the_worker_by_default() -> None:
    app, server, log = _shutdown_app(cleanup=0)
    async with server.connection():
        await _publish_sleepers(app, 0.0)
        with signal_guard(signal.SIGINT) as int_hits:
            worker = asyncio.create_task(app.run_worker())
            await wait_until(lambda: log["cleaned"] == [0.0], "the actor ran")
            send_signal(signal.SIGINT)
            info = await asyncio.wait_for(worker, 30)
        assert int_hits == []
    assert info.processed == 1


async def test_shutdown_closes_the_connection() -> None:
    # Seed 002, "The Shutdown Sequence", step 4: "Finally, the worker safely closes its
    # connection to the broker" (diagram: "Worker->>Broker: Close connection").
    app, server, log = _shutdown_app(cleanup=0)
    await server.connect()
    try:
        await _publish_sleepers(app, 0.0)
        info = await app.run_worker(messages_limit=1, register_signals=[])
        assert info.processed == 1
        assert server.is_connected is False
    finally:
        await server.disconnect()
