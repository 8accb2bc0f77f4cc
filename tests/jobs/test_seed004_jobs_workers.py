"""Seed 004 (jobs, queues, actors, workers): every example, verbatim, on the in-memory brokers.

Whole programs run through `run_program` (as `__main__`); fragments ("code above is omitted")
run inside the smallest scaffolding that gives them their context.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

import repid
from repid import Connection, InMemoryMessageBroker, Job, Queue, Repid, Router, Worker
from tests.jobs._programs import run_program, run_program_until_signal

SIMPLE_JOB = """
import asyncio
from repid import Connection, InMemoryMessageBroker, Job, Repid

app = Repid(Connection(InMemoryMessageBroker()))

async def main() -> None:
    async with app.magic():
        Job(name="my_awesome_job")

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_simple_job_program() -> None:
    ns = run_program(SIMPLE_JOB)
    assert ns["app"].connection.is_open  # magic() connected it and left it open


async def test_enqueue_to_undeclared_default_queue_is_a_key_error() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    # code above is omitted
    with pytest.raises(KeyError) as caught:
        async with app.magic():
            j = Job(name="my_awesome_job")
            await j.enqueue()  # 💥 KeyError: 'default'
    assert caught.value.args == ("default",)
    text = str(caught.value)
    assert "'default'" in text
    assert "await Queue('default').declare()" in text


async def test_declare_the_default_queue_then_enqueue() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    # code above is omitted
    async with app.magic():
        j = Job(name="my_awesome_job")  # (1)
        await j.queue.declare()
        await j.enqueue()
        # ✅ Success!
    # code below is omitted
    (queued,) = app.connection.message_broker.queued("default")
    assert queued.headers["topic"] == "my_awesome_job"
    assert j.queue.name == "default"


async def test_setup_declares_queues() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))

    from repid import Queue

    # code above is omitted

    async def setup() -> None:
        async with app.magic():
            await Queue().declare()  # (1)
            await Queue(name="my_awesome_queue").declare()

    # code below is omitted
    await setup()
    broker = app.connection.message_broker
    assert await broker.is_declared("default")
    assert await broker.is_declared("my_awesome_queue")
    assert not await broker.is_declared("other")


def test_queue_argument_string_or_queue(capsys: pytest.CaptureFixture[str]) -> None:
    my_awesome_job = Job(name="my_awesome_job", queue="non-default-queue")
    another_job = Job(name="another_job", queue=Queue("another-queue"))
    print(type(my_awesome_job.queue))  # repid.Queue
    print(type(another_job.queue))  # repid.Queue
    assert type(my_awesome_job.queue) is repid.Queue
    assert type(another_job.queue) is repid.Queue
    assert my_awesome_job.queue.name == "non-default-queue"
    assert another_job.queue.name == "another-queue"
    assert capsys.readouterr().out.count("Queue") == 2


def test_job_priority() -> None:
    from repid import Job, PrioritiesT

    # code above is omitted
    job = Job("awesome_job_with_priority", priority=PrioritiesT.HIGH)
    # code below is omitted
    assert job.priority is PrioritiesT.HIGH
    assert Job("x").priority is PrioritiesT.MEDIUM
    assert PrioritiesT.HIGH > PrioritiesT.MEDIUM > PrioritiesT.LOW


def test_job_ids_and_uniqueness() -> None:
    assert not Job("a").is_unique
    assert Job("a", id_="fixed").is_unique


def test_timeouts() -> None:
    from datetime import timedelta

    # code above is omitted
    fast = Job("very_fast_job", timeout=timedelta(seconds=5))
    slow = Job("very_slow_job", timeout=timedelta(hours=2))
    # code below is omitted
    assert fast.timeout == timedelta(seconds=5)
    assert slow.timeout == timedelta(hours=2)
    assert Job("x").timeout == timedelta(minutes=10)
    assert Job("x").retries == 0


def test_actor_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    from repid import Router

    my_router = Router()

    @my_router.actor
    async def my_awesome_function() -> None:
        print("Hello Repid!")

    assert [a.name for a in my_router.actors] == ["my_awesome_function"]
    # Actor decorator does not anyhow change the decorated function.
    asyncio.run(my_awesome_function())
    assert capsys.readouterr().out == "Hello Repid!\n"

    my_router = Router()

    @my_router.actor(name="another_name")
    async def my_awesome_function() -> None:  # type: ignore[no-redef]
        print("Hello Repid!")

    assert [a.name for a in my_router.actors] == ["another_name"]


def test_retry_policy_declarations() -> None:
    from repid import Router, default_retry_policy_factory

    my_router = Router()

    @my_router.actor(
        retry_policy=default_retry_policy_factory(
            min_backoff=60,
            max_backoff=86400,
            multiplier=5,
            max_exponent=15,
        )
    )
    async def my_exceptional_function() -> None:
        raise Exception("Some random exception.")

    (actor,) = my_router.actors
    assert actor.extensions["retry_policy"](1) == 300.0
    assert actor.extensions["retry_policy"](2) == 600.0
    assert actor.extensions["retry_policy"](100) == 86400.0

    my_router = Router()

    @my_router.actor(retry_policy=lambda retry_number=1: retry_number * 100)
    async def my_exceptional_function() -> None:  # type: ignore[no-redef]  # noqa: F811
        raise Exception("Some random exception.")

    (actor,) = my_router.actors
    assert actor.extensions["retry_policy"](3) == 300


WORKER_AS_ROUTER = """
import asyncio
from repid import Connection, InMemoryMessageBroker, Job, Repid, Worker

app = Repid(Connection(InMemoryMessageBroker()))

async def main() -> None:
    async with app.magic():
        my_worker = Worker()

        @my_worker.actor
        async def my_func() -> None:
            print("Hello!")

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_worker_is_a_router_program() -> None:
    ns = run_program(WORKER_AS_ROUTER)
    assert ns["app"].connection.is_open
    # The same declaration, observed: the actor lands on the worker like on a router.
    my_worker = Worker()

    @my_worker.actor
    async def my_func() -> None:
        print("Hello!")

    assert isinstance(my_worker, Router)
    assert [a.name for a in my_worker.actors] == ["my_func"]


async def test_include_routers_and_override() -> None:
    router = Router()
    other_router = Router()

    @router.actor(name="shared")
    async def first() -> str:
        return "first"

    @other_router.actor(name="shared")
    async def second() -> str:
        return "second"

    # code above is omitted
    w = Worker(routers=[router, other_router])
    # or
    my_worker = Worker()
    my_worker.include_router(router)
    my_worker.include_router(other_router)
    # code below is omitted

    # "Adding actor with already existing name will override previously stored actor."
    for worker in (w, my_worker):
        (actor,) = worker.actors
        assert actor.fn is second


async def test_override_runs_the_last_actor() -> None:
    app = Repid(
        Connection(
            InMemoryMessageBroker(),
            results_bucket_broker=repid.InMemoryBucketBroker(use_result_bucket=True),
        )
    )
    worker = Worker(messages_limit=1, handle_signals=[])

    @worker.actor(name="job")
    async def old() -> str:
        return "old"

    @worker.actor(name="job")
    async def new() -> str:
        return "new"

    async with app.magic(auto_disconnect=True):
        await Queue().declare()
        job = Job("job")
        await job.enqueue()
        info = await worker.run()
        result = await job.result
    assert info.processed == 1
    assert result is not None and result.data == "new"


RUN_WORKER = """
import asyncio
from repid import Connection, InMemoryMessageBroker, Repid, Worker

app = Repid(Connection(InMemoryMessageBroker()))

async def main() -> None:
    async with app.magic(auto_disconnect=True):
        my_worker = Worker()
        await my_worker.run()

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_running_a_worker_without_actors_program() -> None:
    # "The worker will be running until it receives a signal (SIGINT or SIGTERM, by default)",
    # actors or not.
    ns, signalled = run_program_until_signal(RUN_WORKER)
    assert signalled, "the worker returned without waiting for a signal"
    assert not ns["app"].connection.is_open  # auto_disconnect


def test_worker_options() -> None:
    from signal import SIGQUIT

    # code above is omitted
    worker = Worker(
        graceful_shutdown_time=100.0,  # seconds
        messages_limit=10_000,
        handle_signals=[SIGQUIT],
    )
    # code below is omitted
    assert worker.graceful_shutdown_time == 100.0
    assert worker.messages_limit == 10_000
    assert worker.handle_signals == [SIGQUIT]
    default = Worker()
    assert default.messages_limit is None
    assert default.graceful_shutdown_time == 25.0
    assert set(default.handle_signals) == {signal.SIGINT, signal.SIGTERM}
    assert default.auto_declare is True


RUNNER_PROCESSED = """
import asyncio
from repid import Connection, InMemoryMessageBroker, Repid, Worker

app = Repid(Connection(InMemoryMessageBroker()))

async def main() -> None:
    async with app.magic(auto_disconnect=True):
        my_worker = Worker()
        runner = await my_worker.run()
        print(f"Total actor runs: {runner.processed}")

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_runner_processed_program(capsys: pytest.CaptureFixture[str]) -> None:
    _, signalled = run_program_until_signal(RUNNER_PROCESSED, signal.SIGINT)
    assert signalled
    assert capsys.readouterr().out.strip().endswith("Total actor runs: 0")


RECAP = """
import asyncio

import repid

app = repid.Repid(repid.Connection(repid.InMemoryMessageBroker()))

router = repid.Router()


@router.actor
async def awesome_hello() -> None:
    print("Hello from an actor!")


async def producer_side() -> None:
    async with app.magic():
        await repid.Queue().declare()
        await repid.Job("awesome_hello").enqueue()


async def consumer_side() -> None:
    async with app.magic(auto_disconnect=True):
        await repid.Worker(routers=[router], messages_limit=1).run()


async def main() -> None:
    await producer_side()
    await consumer_side()


if __name__ == "__main__":
    asyncio.run(main())
"""


def test_recap_program(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_program(RECAP)
    assert "Hello from an actor!" in capsys.readouterr().out
    assert ns["app"].connection.message_broker.queued("default") == []


def test_worker_counts_processed_jobs() -> None:
    app = Repid(Connection(InMemoryMessageBroker()))
    my_worker = Worker(handle_signals=[], messages_limit=3)
    seen: list[int] = []

    @my_worker.actor
    async def count(n: int) -> None:
        seen.append(n)

    async def main() -> None:
        async with app.magic(auto_disconnect=True):
            await Queue().declare()
            for n in range(3):
                await Job("count", args={"n": n}).enqueue()
            runner = await my_worker.run()
            assert runner.processed == 3

    asyncio.run(main())
    assert seen == [0, 1, 2]
