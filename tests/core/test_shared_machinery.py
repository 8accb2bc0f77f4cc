"""The pieces every built-in server shares: backoff, coalescing, the timeout shim, the delivery
loop, subscription state and the settlement policy."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repid import InMemoryServer, Repid, Router, SubscriptionState
from repid.connections.abc import DeliveryCapacity, ReceivedMessageT
from repid.connections.backoff import Backoff
from repid.connections.coalesce import Coalescer
from repid.connections.delivery import DeliveryLoop
from repid.connections.timeouts import _Timeout310, timeout
from repid.errors import InvalidConfirmationError
from repid.worker.settlement import (
    ACK,
    NO_ACTION,
    POISON_THRESHOLD,
    REJECT,
    SettlementPolicy,
    describe_error,
    unrouted_decision,
)

# -- backoff ------------------------------------------------------------------------------


@given(
    base=st.floats(0.001, 1.0),
    factor=st.floats(1.0, 100.0),
    jitter=st.floats(0.0, 1.0),
    draws=st.integers(1, 80),
)
def test_backoff_stays_within_its_ceiling_and_cap(
    base: float, factor: float, jitter: float, draws: int
) -> None:
    cap = base * factor
    backoff = Backoff(base, cap, jitter=jitter, rng=random.Random(1))
    for n in range(draws):
        ceiling = min(cap, base * 2**n)
        delay = backoff.next()
        assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9
    backoff.reset()
    assert backoff.attempt == 0 and backoff.ceiling() == base


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)
    with pytest.raises(ValueError):
        Backoff(0.1, 1.0, jitter=2.0)


# -- coalescing ---------------------------------------------------------------------------


async def test_calls_made_while_a_request_is_out_go_together() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def send(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        await release.wait()
        return [item * 10 if item != 3 else ValueError("three") for item in items]

    coalescer: Coalescer[int, int] = Coalescer(send)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(coalescer.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 10
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[0] == 20 and isinstance(results[1], ValueError) and results[2] == 40
    assert batches == [[1], [2, 3, 4]]
    assert coalescer.idle


async def test_a_failed_request_fails_every_item_it_carried() -> None:
    async def send(items: list[str]) -> None:
        raise ConnectionError("down")

    coalescer: Coalescer[str, None] = Coalescer(send)
    results = await asyncio.gather(
        coalescer.submit("a"), coalescer.submit("b"), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_take_bounds_a_request_and_inline_sends_from_the_caller() -> None:
    batches: list[list[int]] = []
    tasks: list[asyncio.Task[Any] | None] = []

    async def send(items: list[int]) -> list[int]:
        batches.append(items)
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0.01)
        return items

    coalescer: Coalescer[int, int] = Coalescer(send, take=lambda pending: 2, inline=True)
    caller = asyncio.current_task()
    lone = await coalescer.submit(0)
    assert lone == 0 and tasks[0] is caller  # a lone call is sent from its own task
    results = await asyncio.gather(*(coalescer.submit(n) for n in range(1, 6)))
    assert results == [1, 2, 3, 4, 5]
    assert all(len(batch) <= 2 for batch in batches[1:])


# -- the timeout shim ---------------------------------------------------------------------


async def test_callers_one_reply_woke_share_the_next_request() -> None:
    """Concurrent senders (each awaiting its publish before the next) fill every request.

    Each reply wakes all the callers it carried at once; the first of them to send again must
    not go alone (a request for one item, a round trip the others then wait for).
    """
    batches: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.001)
        return items

    coalescer: Coalescer[int, int] = Coalescer(send, inline=True)

    async def sender(first: int) -> list[int]:
        return [await coalescer.submit(first + k) for k in range(5)]

    results = await asyncio.gather(*(sender(10 * s) for s in range(10)))
    assert results == [[10 * s + k for k in range(5)] for s in range(10)]  # order per caller
    assert [len(batch) for batch in batches] == [10] * 5
    assert coalescer.idle


async def test_a_caller_cancelled_before_its_request_leaves_the_others_served() -> None:
    batches: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    coalescer: Coalescer[int, int] = Coalescer(send, inline=True)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0)  # `first` holds the inline slot, yielding once before it sends
    second = asyncio.ensure_future(coalescer.submit(2))
    first.cancel()
    assert await second == 2
    assert first.cancelled() and batches == [[2]]
    assert coalescer.idle


@pytest.mark.parametrize("make", [timeout, _Timeout310], ids=["asyncio", "py310-shim"])
async def test_timeout_tells_its_deadline_from_the_body_s_own_timeout(make: Any) -> None:
    cm = make(0.05)
    with pytest.raises(TimeoutError):
        async with cm:
            await asyncio.sleep(5)
    assert cm.expired()

    own = make(5)
    with pytest.raises(TimeoutError):
        async with own:
            raise TimeoutError("the body's own")
    assert not own.expired()

    async with make(None) as never:
        await asyncio.sleep(0)
    assert not never.expired()


# -- the delivery loop --------------------------------------------------------------------


class _Message:
    def __init__(self, n: int) -> None:
        self.n = n
        self.rejected = False
        self.channel = "c"
        self.message_id = str(n)

    @property
    def is_acted_on(self) -> bool:
        return self.rejected

    async def reject(self) -> None:
        self.rejected = True


async def test_the_delivery_loop_delivers_only_into_free_slots_and_survives_callbacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    capacity = DeliveryCapacity(2)
    delivered: list[int] = []

    async def callback(message: Any) -> None:
        assert capacity.free > 0
        capacity.acquire()
        delivered.append(message.n)
        if message.n == 1:
            raise RuntimeError("broken callback")

    messages = {n: _Message(n) for n in range(5)}
    loop: DeliveryLoop[int] = DeliveryLoop(capacity, lambda n: (messages[n], callback))
    for n in range(5):
        loop.push(n)
    task = asyncio.ensure_future(loop.run())
    await asyncio.sleep(0.05)
    assert delivered == [0, 1]  # two slots
    assert messages[1].rejected  # the broken callback's message went back
    capacity.release()
    await asyncio.sleep(0.05)
    assert delivered == [0, 1, 2]
    loop.pause()
    capacity.release()
    await asyncio.sleep(0.05)
    assert delivered == [0, 1, 2]  # paused
    loop.resume()
    await asyncio.sleep(0.05)
    assert delivered == [0, 1, 2, 3]
    loop.close()  # while it waits for a free slot: it ends anyway
    await asyncio.wait([task], timeout=1)
    assert task.done()
    assert any("callback_failed" in r.getMessage() for r in caplog.records)


# -- subscription state -------------------------------------------------------------------


async def test_subscription_state_follows_pause_resume_close_and_a_dead_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = InMemoryServer()
    await server.connect()

    async def callback(message: ReceivedMessageT) -> None:
        raise AssertionError("not called")

    sub: Any = await server.subscribe(
        channels_to_callbacks={"q": callback}, capacity=DeliveryCapacity(1)
    )
    assert sub.state is SubscriptionState.ACTIVE
    await sub.pause()
    assert sub.state is SubscriptionState.PAUSED and not sub.is_active
    await sub.resume()
    assert sub.state is SubscriptionState.ACTIVE

    async def dies() -> None:
        raise RuntimeError("the consumer loop broke")

    sub._spawn(dies(), "doomed")  # what a consumer loop dying of a bug looks like
    await asyncio.sleep(0.01)
    assert sub.state is SubscriptionState.FAILED
    assert any(r.getMessage().startswith("subscription.failed") for r in caplog.records)
    await sub.close()
    assert sub.state is SubscriptionState.CLOSED
    await server.disconnect()


async def test_runner_is_ready_only_while_its_subscription_is_active() -> None:
    app = Repid()
    server = InMemoryServer()
    app.servers.register_server("default", server, is_default=True)
    router = Router()

    @router.actor(channel="c")
    async def job() -> None: ...

    app.include_router(router)
    async with server.connection():
        runner = app.create_runner()
        assert not runner.is_ready and runner.subscription_state is None
        task = asyncio.create_task(runner.run(()))
        for _ in range(100):
            if runner.is_ready:
                break
            await asyncio.sleep(0.01)
        assert runner.is_ready and runner.subscription_state is SubscriptionState.ACTIVE
        await server.subscriptions[0].pause()
        assert not runner.is_ready
        await server.subscriptions[0].resume()
        assert runner.is_ready
        runner.stop()
        await asyncio.wait_for(task, 5)
    assert not runner.is_ready


# -- the settlement policy ----------------------------------------------------------------


def test_the_policy_decides_every_case() -> None:
    auto = SettlementPolicy("a", "auto", "nack")
    assert auto.after_return(None) is ACK
    assert auto.after_error(RuntimeError()).outcome == "nack"
    assert auto.after_timeout() is REJECT
    parsed = auto.after_parse_failure(ValueError("line 1\n  bad"))
    assert parsed.outcome == "nack" and parsed.reason == "ValueError: line 1 bad"
    assert auto.leftover(ACK) is REJECT and auto.leftover(NO_ACTION) is None

    manual = SettlementPolicy("m", "manual", "no_action")
    assert manual.after_return("whatever") is NO_ACTION and manual.leftover(None) is None
    assert manual.after_parse_failure(ValueError()) is NO_ACTION

    explicit = SettlementPolicy("e", "manual_explicit", "no_action")
    assert explicit.after_return("reject") is REJECT
    with pytest.raises(InvalidConfirmationError) as info:
        explicit.after_return("maybe")
    assert explicit.after_invalid_return(info.value) is REJECT  # never left unsettled

    chooser = SettlementPolicy(
        "c", "auto", lambda exc: "reject" if isinstance(exc, KeyError) else "ack"
    )
    assert chooser.after_error(KeyError()) is REJECT and chooser.after_error(ValueError()) is ACK
    broken = SettlementPolicy("b", "auto", lambda exc: 1 / 0)  # type: ignore[arg-type,return-value]
    assert broken.after_error(ValueError()) is REJECT

    assert unrouted_decision(1) is REJECT
    poison = unrouted_decision(POISON_THRESHOLD)
    assert poison.outcome == "nack" and poison.reason and "poison" in poison.reason
    assert len(describe_error(ValueError("x" * 5000))) == 1000
