"""Point 8: confirmation modes, on_error policies, defaults and forbidden combinations."""

from typing import Literal

import pytest

from repid import (
    ActorDeclarationError,
    InvalidConfirmationError,
    Message,
    Repid,
    Router,
    TestClient,
)


async def run(actor_fn, payload=b"", **options):
    app = Repid()
    router = Router()
    router.actor(**options)(actor_fn)
    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(
            channel="default", payload=payload, headers={"topic": actor_fn.__name__}
        )
        msg = client.get_processed_messages()[-1]
        return msg, client.get_server()


async def ok() -> str:
    return "ok"


async def boom() -> None:
    raise RuntimeError("boom")


def state(msg) -> str:
    flags = [n for n in ("acked", "nacked", "rejected") if getattr(msg, n)]
    return flags[0] if flags else "none"


@pytest.mark.parametrize(
    ("fn", "options", "expected"),
    [
        (ok, {}, "acked"),
        (boom, {}, "nacked"),  # auto: on_error defaults to nack
        (boom, {"on_error": "reject"}, "rejected"),
        (boom, {"on_error": "ack"}, "acked"),
        (boom, {"on_error": "no_action"}, "none"),
        (ok, {"confirmation_mode": "always_ack"}, "acked"),
        (boom, {"confirmation_mode": "always_ack"}, "acked"),
        (ok, {"confirmation_mode": "ack_first"}, "acked"),
        (boom, {"confirmation_mode": "ack_first"}, "acked"),
        (ok, {"confirmation_mode": "manual"}, "none"),
        (boom, {"confirmation_mode": "manual"}, "none"),  # manual: on_error defaults no_action
        (boom, {"confirmation_mode": "manual", "on_error": "nack"}, "nacked"),
    ],
)
async def test_outcomes(fn, options, expected) -> None:
    msg, _ = await run(fn, **options)
    assert state(msg) == expected


async def test_on_error_callable_decides_per_exception() -> None:
    def handle_error(exc: Exception) -> Literal["reject", "nack", "ack"]:
        return "reject" if isinstance(exc, ValueError) else "nack"

    async def value_error() -> None:
        raise ValueError

    async def type_error() -> None:
        raise TypeError

    assert state((await run(value_error, on_error=handle_error))[0]) == "rejected"
    assert state((await run(type_error, on_error=handle_error))[0]) == "nacked"


async def test_on_error_callable_returning_garbage_rejects() -> None:
    msg, _ = await run(boom, on_error=lambda exc: "explode")
    assert msg.rejected


async def test_ack_first_acks_before_the_actor_runs() -> None:
    seen = []

    async def check(message: Message) -> None:
        seen.append(message.is_acted_on)

    msg, _ = await run(check, confirmation_mode="ack_first")
    assert seen == [True] and msg.acked


@pytest.mark.parametrize("result", ["ack", "nack", "reject", "no_action"])
async def test_manual_explicit_acts_on_returned_literal(result) -> None:
    async def explicit() -> str:
        return result

    msg, _ = await run(explicit, confirmation_mode="manual_explicit")
    expected = {"ack": "acked", "nack": "nacked", "reject": "rejected", "no_action": "none"}
    assert state(msg) == expected[result]


async def test_manual_explicit_wrong_return_is_an_error_and_rejects() -> None:
    async def forgot() -> None:
        return None

    msg, server = await run(forgot, confirmation_mode="manual_explicit")
    assert isinstance(msg.exception, InvalidConfirmationError)
    assert "returned None" in str(msg.exception)
    assert msg.rejected
    assert len(server.queued("default")) == 1  # back in the queue, not lost

    msg, _ = await run(forgot, confirmation_mode="manual_explicit", on_error="nack")
    assert msg.nacked


async def test_manual_mode_validation_error_uses_on_error() -> None:
    ran = []

    async def typed(n: int) -> str:
        ran.append(n)
        return "ack"

    msg, _ = await run(typed, b'{"n": "x"}', confirmation_mode="manual_explicit", on_error="nack")
    assert msg.nacked and ran == []
    msg, server = await run(typed, b'{"n": "x"}', confirmation_mode="manual_explicit")
    assert state(msg) == "none"  # no_action by default in manual modes


async def test_eager_ack_then_exception_does_not_act_twice() -> None:
    async def early(message: Message) -> None:
        await message.ack()
        raise RuntimeError("after ack")

    msg, server = await run(early)
    assert msg.acked and not msg.nacked
    assert server.dead_letters == {}


@pytest.mark.parametrize("mode", ["always_ack", "ack_first"])
def test_on_error_is_forbidden_with_modes_that_decide_it(mode) -> None:
    router = Router()
    with pytest.raises(ActorDeclarationError, match="on_error cannot be set"):

        @router.actor(confirmation_mode=mode, on_error="nack")
        async def a() -> None: ...


def test_invalid_mode_and_on_error_values_are_rejected_when_declared() -> None:
    router = Router()
    with pytest.raises(ActorDeclarationError, match="confirmation_mode must be one of"):
        router.actor(confirmation_mode="sometimes")(ok)  # type: ignore[call-overload]
    with pytest.raises(ActorDeclarationError, match="on_error must be one of"):
        router.actor(on_error="retry")(ok)  # type: ignore[call-overload]
    with pytest.raises(ActorDeclarationError, match="timeout must be a positive"):
        router.actor(timeout=-1)(ok)
