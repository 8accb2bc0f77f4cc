"""Point 4: Router options, defaults propagation, nesting and the unchanged decorator."""

import pytest

from repid import ActorDeclarationError, Repid, Router, catch_all_routing_strategy


async def plain(n: int) -> int:
    return n * 2


def test_decorator_returns_the_function_unchanged() -> None:
    router = Router()
    assert router.actor(plain) is plain
    assert router.actor(channel="x", timeout=3)(plain) is plain


async def test_decorated_function_is_still_callable() -> None:
    router = Router()

    @router.actor(channel="c")
    async def f(x: int) -> int:
        return x + 1

    assert await f(1) == 2


def test_every_option_is_recorded_on_actor_data() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from repid import BasicConverter

    pool = ThreadPoolExecutor(1)

    def mw(call_next, message, actor):
        return call_next(message, actor)

    def on_error(exc: Exception) -> str:
        return "nack"

    router = Router()

    def sync_fn() -> None: ...

    router.actor(
        channel="q",
        name="custom",
        routing_strategy=catch_all_routing_strategy,
        confirmation_mode="manual",
        on_error=on_error,
        timeout=2.5,
        pool_executor=pool,
        converter=BasicConverter,
        middlewares=[mw],
        title="T",
        description="D",
    )(sync_fn)
    [actor] = router.actors
    assert actor.name == "custom"
    assert actor.channel == "q"
    assert actor.routing_strategy is catch_all_routing_strategy
    assert actor.confirmation_mode == "manual"
    assert actor.on_error is on_error
    assert actor.timeout == 2.5
    assert actor.pool_executor is pool
    assert actor.converter is BasicConverter
    assert actor.middlewares == [mw]
    assert (actor.title, actor.description) == ("T", "D")
    pool.shutdown()


def test_defaults_for_a_bare_actor() -> None:
    router = Router()
    router.actor(plain)
    [actor] = router.actors
    assert actor.name == "plain"
    assert actor.channel == "default"
    assert actor.confirmation_mode == "auto"
    assert actor.on_error == "nack"
    assert actor.timeout is None
    assert actor.run_in_process is False


def test_router_defaults_and_overrides() -> None:
    router = Router(channel="background_jobs", timeout=10.0)

    @router.actor()
    async def task_a() -> None: ...

    @router.actor(timeout=30.0)
    async def task_b() -> None: ...

    a, b = router.actors
    assert (a.channel, a.timeout) == ("background_jobs", 10.0)
    assert (b.channel, b.timeout) == ("background_jobs", 30.0)


def test_nested_defaults_propagate_and_middlewares_concatenate() -> None:
    def m(name):
        async def mw(call_next, message, actor):
            return await call_next(message, actor)

        mw.__name__ = name
        return mw

    parent_mw, child_mw, actor_mw = m("parent"), m("child"), m("actor")
    parent = Router(channel="main_queue", timeout=60.0, middlewares=[parent_mw])
    child = Router(confirmation_mode="manual", middlewares=[child_mw])

    @child.actor(middlewares=[actor_mw])
    async def my_nested_actor() -> None: ...

    parent.include_router(child)
    app = Repid()
    app.include_router(parent)
    [actor] = app.actors
    assert actor.channel == "main_queue"
    assert actor.timeout == 60.0
    assert actor.confirmation_mode == "manual"
    assert actor.on_error == "no_action"  # the manual-mode default
    assert actor.middlewares == [parent_mw, child_mw, actor_mw]


def test_child_router_overrides_parent_default() -> None:
    parent = Router(channel="p")
    child = Router(channel="c")
    child.actor(plain)
    parent.include_router(child)
    assert parent.actors[0].channel == "c"


def test_router_included_before_actors_are_declared() -> None:
    app = Repid()
    router = Router()
    app.include_router(router)
    router.actor(plain)
    assert [a.name for a in app.actors] == ["plain"]


def test_router_on_error_is_ignored_by_modes_that_decide_it() -> None:
    router = Router(on_error="reject")

    @router.actor(confirmation_mode="always_ack")
    async def a() -> None: ...

    assert router.actors[0].on_error == "ack"


def test_include_router_cycles_are_refused() -> None:
    a, b = Router(), Router()
    a.include_router(b)
    with pytest.raises(ValueError, match="cycle"):
        b.include_router(a)
    with pytest.raises(ValueError, match="itself"):
        a.include_router(a)


def test_router_level_conflicts_are_refused() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with pytest.raises(ActorDeclarationError):
        Router(run_in_process=True, pool_executor=ThreadPoolExecutor(1))
    with pytest.raises(ActorDeclarationError):
        Router(confirmation_mode="ack_first", on_error="nack")
