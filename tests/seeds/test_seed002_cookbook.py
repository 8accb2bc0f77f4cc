"""Seed 002, "Chaining jobs" and the Cookbook (Sentry middleware, RabbitMQ retries, large
payloads): the examples, verbatim, on the in-memory broker.

- Sentry: the real `sentry_sdk` (installed in the venv); events are captured by a transport
  that keeps them in memory instead of sending them.
- RabbitMQ retries: the decorator (in `_retries.py`) on the in-memory broker, which ignores the
  AMQP-only `to` parameter, so a retry is re-published straight back to the work queue (no
  delay queues); the AMQP tests cover the RabbitMQ topology.
- Large payloads: real `polars`; `aioboto3` is replaced by a minimal in-memory S3 stand-in
  (there is no S3 service here), so what is tested is the Repid side and the actor's logic.
"""

import asyncio
import io
import json
import sys
import types
from typing import Any

import pytest

from repid import InMemoryServer, Message, Repid, Router, TestClient

from ._retries import with_rabbitmq_retries

# --- Chaining jobs ------------------------------------------------------------------------


async def test_chaining_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio  # noqa: F401

    from repid import InMemoryServer, Message, Repid, Router

    app = Repid()
    app.servers.register_server("default", InMemoryServer(), is_default=True)

    router = Router()

    @router.actor(channel="registration")
    async def create_user(username: str, message: Message) -> None:
        # 1. Pretend we save to the database and generate an ID
        user_id = 123
        print(f"Created user {username} with ID {user_id}")

        # 2. Chain the next job!
        # We send a message to the email queue, passing along the generated user_id
        await message.send_message_json(
            channel="email",
            payload={"user_id": user_id, "username": username},
            headers={"topic": "send_welcome_email"},
        )
        # The current message is automatically acknowledged when this actor finishes successfully.

    @router.actor(channel="email")
    async def send_welcome_email(user_id: int, username: str) -> None:
        print(f"Sending welcome email to User #{user_id} ({username})!")

    app.include_router(router)

    async def main() -> None:
        async with app.servers.default.connection():
            # Kick off the chain by sending the first message
            await app.send_message_json(
                channel="registration",
                payload={"username": "Alex"},
                headers={"topic": "create_user"},
            )

            # Process the queue.
            # It will first process the 'create_user' message,
            # which will then enqueue the 'send_welcome_email' message,
            # which will then be processed in the next iteration!
            await app.run_worker(messages_limit=2)

    await main()  # seed: if __name__ == "__main__": asyncio.run(main())

    # "When you run this script, the worker will process both jobs in sequence!"
    assert capsys.readouterr().out == (
        "Created user Alex with ID 123\nSending welcome email to User #123 (Alex)!\n"
    )
    server = app.servers.default
    assert server.queued("registration") == [] and server.queued("email") == []
    assert server.dead_letters == {}


# --- Sentry Middleware --------------------------------------------------------------------


class _MemoryTransport:
    """Collects the events sentry_sdk would send (no network)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def make(self) -> Any:
        from sentry_sdk.transport import Transport

        events = self.events

        class Capture(Transport):
            def capture_envelope(self, envelope: Any) -> None:
                event = envelope.get_event()
                if event is not None:
                    events.append(event)

        return Capture()


def _sentry_middleware() -> Any:
    from typing import Callable, Coroutine, TypeVar  # noqa: UP035

    import sentry_sdk  # noqa: F401

    from repid.connections.abc import ReceivedMessageT
    from repid.data import ActorData

    T = TypeVar("T")

    async def sentry_actor_middleware(
        call_next: Callable[[ReceivedMessageT, ActorData], Coroutine[None, None, T]],
        message: ReceivedMessageT,
        actor: ActorData,
    ) -> T:
        with sentry_sdk.new_scope() as scope:  # (1)!
            scope.set_tag("repid.channel", message.channel)  # (2)!
            scope.set_tag("repid.actor", actor.name)
            if message.message_id:
                scope.set_tag("repid.message_id", message.message_id)

            try:
                return await call_next(message, actor)  # (3)!
            except Exception as e:
                sentry_sdk.capture_exception(e)  # (4)!
                raise

    return sentry_actor_middleware


async def test_sentry_middleware(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    sentry_actor_middleware = _sentry_middleware()

    from repid import Repid, Router

    sentry_sdk.init()  # (1)!

    app = Repid(actor_middlewares=[sentry_actor_middleware])  # (2)!
    router = Router()

    @router.actor(channel="my_queue")  # (3)!
    async def process_task(data: dict) -> None:
        print("Processing task...")
        raise ValueError("Something went wrong!")  # (4)!

    # Added: a Sentry client whose transport keeps events in memory, then run the actor.
    capture = _MemoryTransport()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1", transport=capture.make(), default_integrations=False
    )
    try:
        app.include_router(router)
        server = InMemoryServer()
        app.servers.register_server("default", server)
        async with server.connection():
            await app.send_message_json(
                channel="my_queue",
                payload={"data": {"k": 1}},
                headers={"topic": "process_task"},
                server_specific_parameters={"message_id": "m-42"},
            )
            await app.run_worker(messages_limit=1, register_signals=[])
        sentry_sdk.flush()
    finally:
        sentry_sdk.init()  # back to a disabled client
    assert capsys.readouterr().out == "Processing task...\n"
    (event,) = capture.events
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "Something went wrong!")
    assert event["tags"] == {
        "repid.channel": "my_queue",
        "repid.actor": "process_task",
        "repid.message_id": "m-42",
    }
    # "Capture the exception before letting it bubble up to Repid's internal error handler"
    assert [m.message_id for m in server.dead_letters["my_queue"]] == ["m-42"]


# --- RabbitMQ Retries with Exponential Backoff --------------------------------------------


def _retry_app() -> Repid:
    router = Router()

    @router.actor(channel="my_work_queue")
    @with_rabbitmq_retries(max_retries=5, retry_exceptions=(ConnectionError, TimeoutError))
    async def process_task(data: dict) -> None:
        print(f"Processing data: {data}")
        if data.get("bad_payload"):
            raise ValueError("Invalid data format")  # (1)!
        raise ConnectionError("Temporary API failure")  # (2)!

    app = Repid()
    app.include_router(router)
    return app


async def test_rabbitmq_retries_decorator(capsys: pytest.CaptureFixture[str]) -> None:
    app = _retry_app()
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="my_work_queue",
            payload={"data": {"id": 7}},
            headers={"topic": "process_task"},
        )
        processed = client.get_processed_messages()
        sent = client.get_sent_messages(channel="my_work_queue")
        server = client.get_server()
        dead = server.dead_letters.get("my_work_queue", [])
        last_id = processed[-1].message_id

    # The first attempt and 5 retries, each re-published with the next x-retry-count.
    assert [m.headers.get("x-retry-count") for m in sent] == [None, "1", "2", "3", "4", "5"]
    assert all(m.headers["topic"] == "process_task" for m in sent)
    assert all(json.loads(m.payload) == {"data": {"id": 7}} for m in sent)
    assert all(m.content_type == "application/json" for m in sent)
    # Attempts 1-5 were caught by the decorator: acked (auto mode, returned normally).
    assert [(m.acked, m.nacked) for m in processed[:5]] == [(True, False)] * 5
    # The 6th exhausted the retries: re-raised, so auto mode nacked it.
    assert processed[5].nacked is True
    assert isinstance(processed[5].exception, ConnectionError)
    assert len(processed) == 6
    assert [json.loads(m.payload) for m in dead] == [{"data": {"id": 7}}]
    delays = [10000, 60000, 300000, 600000, 1800000]
    expected = ""
    for attempt, delay in enumerate(delays, start=1):
        expected += "Processing data: {'id': 7}\n"
        expected += (
            f"Task failed: Temporary API failure. Retrying in {delay}ms (Attempt {attempt})\n"
        )
    expected += "Processing data: {'id': 7}\n"
    expected += f"Max retries (5) reached for message {last_id}\n"
    assert capsys.readouterr().out == expected


async def test_rabbitmq_retries_skip_other_exceptions(capsys: pytest.CaptureFixture[str]) -> None:
    app = _retry_app()
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="my_work_queue",
            payload={"data": {"bad_payload": True}},
            headers={"topic": "process_task"},
        )
        (processed,) = client.get_processed_messages()
        assert len(client.get_sent_messages()) == 1  # no retry published
        dead = client.get_server().dead_letters["my_work_queue"]
    assert isinstance(processed.exception, ValueError)
    assert processed.nacked is True
    assert len(dead) == 1
    assert capsys.readouterr().out == "Processing data: {'bad_payload': True}\n"


async def test_rabbitmq_retries_pass_the_to_parameter() -> None:
    # The republish carries the AMQP address for the delay exchange in server_specific_parameters.
    captured: list[dict | None] = []

    async def spy(call_next, channel, message, server_specific_parameters):
        captured.append(server_specific_parameters)
        return await call_next(channel, message, server_specific_parameters)

    app = _retry_app()
    app.producer_middlewares.append(spy)
    async with TestClient(app, auto_process=False) as client:
        await client.send_message_json(
            channel="my_work_queue", payload={"data": {}}, headers={"topic": "process_task"}
        )
        await client.process_next()
    assert captured == [None, {"to": "/exchanges/retry_exchange/delay.10000.my_work_queue"}]


async def test_rabbitmq_retries_keep_an_explicit_message_parameter() -> None:
    # The decorator's other branch: the actor asks for `message` itself.
    router = Router()
    seen: list[str | None] = []

    @router.actor(channel="my_work_queue")
    @with_rabbitmq_retries(max_retries=0)
    async def wants_message(n: int, message: Message) -> int:
        seen.append(message.channel)
        return n * 2

    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="my_work_queue", payload={"n": 4}, headers={"topic": "wants_message"}
        )
        (processed,) = client.get_processed_messages()
    assert processed.result == 8
    assert seen == ["my_work_queue"]


# --- Handling Large Payloads --------------------------------------------------------------


class _FakeS3:
    """Stand-in for aioboto3 (no S3 service here): buckets in a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def module(self) -> types.ModuleType:
        store = self.objects

        class Body:
            def __init__(self, data: bytes) -> None:
                self._data = data

            async def read(self) -> bytes:
                return self._data

        class Client:
            async def __aenter__(self) -> "Client":
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            async def get_object(self, *, Bucket: str, Key: str) -> dict:
                return {"Body": Body(store[(Bucket, Key)])}

            async def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict:
                store[(Bucket, Key)] = Body
                return {}

            async def delete_object(self, *, Bucket: str, Key: str) -> dict:
                del store[(Bucket, Key)]
                return {}

        class Session:
            def client(self, name: str) -> Client:
                assert name == "s3"
                return Client()

        module = types.ModuleType("aioboto3")
        module.Session = Session  # type: ignore[attr-defined]
        return module


async def test_large_payloads_publisher() -> None:
    from repid import Repid

    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server)

    # Assuming `app` is your initialized and configured Repid instance
    async def enqueue_audience_processing(job_id: int, s3_key: str) -> None:
        await app.send_message_json(
            channel="process_audience",
            payload={
                "job_id": job_id,
                "s3_key": s3_key,
            },
        )  # (1)!

    async with server.connection():
        await enqueue_audience_processing(123, "uploads/123.csv")
    (stored,) = server.queued("process_audience")
    assert json.loads(stored.payload) == {"job_id": 123, "s3_key": "uploads/123.csv"}
    assert stored.headers is None


async def test_large_payloads_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("polars")
    s3 = _FakeS3()
    monkeypatch.setitem(sys.modules, "aioboto3", s3.module())
    s3.objects[("my-marketing-bucket", "uploads/123.csv")] = (
        b"email,country\na@x.io,NO\nb@x.io,NO\na@x.io,NO\nc@x.io,SE\n"
    )

    import asyncio  # noqa: F401
    import io  # noqa: F401

    import aioboto3
    import polars as pl

    from repid import Router

    router = Router()

    def _heavy_computation(file_data: bytes) -> bytes:  # (1)!
        df = pl.read_csv(io.BytesIO(file_data))

        # Perform heavy lifting: e.g., aggregations and deduplication
        summary_df = (
            df.unique(subset=["email"]).group_by("country").agg(pl.len().alias("user_count"))
        )

        buffer = io.BytesIO()
        summary_df.write_csv(buffer)
        return buffer.getvalue()

    @router.actor
    async def process_audience(job_id: int, s3_key: str) -> None:
        session = aioboto3.Session()

        # Step 1: Download the raw data
        async with session.client("s3") as s3:
            response = await s3.get_object(Bucket="my-marketing-bucket", Key=s3_key)
            file_data = await response["Body"].read()

        # Step 2: Offload CPU-bound work to a separate thread
        summary_bytes = await asyncio.to_thread(_heavy_computation, file_data)  # (2)!

        # Step 3: Upload the result and clean up
        summary_key = f"reports/summary_{job_id}.csv"
        async with session.client("s3") as s3:
            await s3.put_object(
                Bucket="my-marketing-bucket",
                Key=summary_key,
                Body=summary_bytes,
            )  # (3)!
            await s3.delete_object(Bucket="my-marketing-bucket", Key=s3_key)  # (4)!

    # Added: the seed's publisher sends to channel "process_audience" without a topic, but
    # this actor (bare @router.actor) listens on the default channel for topic
    # "process_audience"; we send it where it listens.
    app = Repid()
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="default",
            payload={"job_id": 123, "s3_key": "uploads/123.csv"},
            headers={"topic": "process_audience"},
        )
        (processed,) = client.get_processed_messages()
    assert processed.success, processed.exception
    assert processed.acked
    assert ("my-marketing-bucket", "uploads/123.csv") not in s3.objects
    report = s3.objects[("my-marketing-bucket", "reports/summary_123.csv")]
    rows = sorted(report.decode().strip().splitlines()[1:])
    assert rows == ["NO,2", "SE,1"]


_ = (asyncio, io)
