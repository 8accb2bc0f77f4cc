"""Point 12: actor and producer middlewares in onion order."""

from repid import MessageData, Repid, Router, TestClient


def recorder(log: list, name: str):
    async def middleware(call_next, message, actor):
        log.append(f"{name}>")
        try:
            return await call_next(message, actor)
        finally:
            log.append(f"<{name}")

    return middleware


async def test_actor_middlewares_app_router_nested_actor_order() -> None:
    log: list = []
    app = Repid(actor_middlewares=[recorder(log, "app1"), recorder(log, "app2")])
    parent = Router(middlewares=[recorder(log, "parent")])
    child = Router(middlewares=[recorder(log, "child")])

    @child.actor(middlewares=[recorder(log, "actor")])
    async def job() -> str:
        log.append("job")
        return "result"

    parent.include_router(child)
    app.include_router(parent)
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=b"", headers={"topic": "job"})
        [msg] = client.get_processed_messages()
    assert msg.result == "result"
    assert log == [
        "app1>",
        "app2>",
        "parent>",
        "child>",
        "actor>",
        "job",
        "<actor",
        "<child",
        "<parent",
        "<app2",
        "<app1",
    ]


async def test_actor_middleware_sees_actor_data_and_can_change_result_and_errors() -> None:
    seen = []

    async def middleware(call_next, message, actor):
        seen.append((message.channel, actor.name))
        try:
            return (await call_next(message, actor)) * 2
        except ZeroDivisionError:
            return "handled"

    app = Repid(actor_middlewares=[middleware])
    router = Router()

    @router.actor(channel="c")
    async def double(n: int) -> int:
        return 1 // n

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"n": 1}, headers={"topic": "double"})
        await client.send_message_json(channel="c", payload={"n": 0}, headers={"topic": "double"})
        first, second = client.get_processed_messages()
    assert seen == [("c", "double"), ("c", "double")]
    assert first.result == 2
    assert second.result == "handled" and second.acked


async def test_actor_middleware_can_catch_validation_errors_and_act() -> None:
    async def settle_bad_input(call_next, message, actor):
        try:
            return await call_next(message, actor)
        except ValueError:
            await message.reject()
            raise

    app = Repid()
    router = Router(middlewares=[settle_bad_input])

    @router.actor(confirmation_mode="manual")
    async def typed(n: int) -> None: ...

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(
            channel="default", payload=b'{"n":"x"}', headers={"topic": "typed"}
        )
        [msg] = client.get_processed_messages()
    assert msg.rejected


async def test_producer_middlewares_onion_and_message_replacement(memory_app) -> None:
    log: list = []

    def named(name: str):
        async def middleware(call_next, channel, message, server_specific_parameters):
            log.append(f"{name}>")
            headers = dict(message.headers or {})
            headers[f"X-{name}"] = "1"
            message = MessageData(
                payload=message.payload, headers=headers, content_type=message.content_type
            )
            result = await call_next(channel, message, server_specific_parameters)
            log.append(f"<{name}")
            return result

        return middleware

    _, server = memory_app
    app = Repid(producer_middlewares=[named("first"), named("second")])
    app.servers.register_server("default", server)
    await app.send_message(channel="c", payload=b"p", headers={"topic": "t"})
    [stored] = server.queued("c")
    assert stored.headers == {"topic": "t", "X-first": "1", "X-second": "1"}
    assert log == ["first>", "second>", "<second", "<first"]


async def test_producer_middleware_runs_for_sends_from_actors_too() -> None:
    channels = []

    async def spy(call_next, channel, message, ssp):
        channels.append(channel)
        return await call_next(channel, message, ssp)

    app = Repid(producer_middlewares=[spy])
    router = Router()

    @router.actor
    async def a(message) -> None: ...

    from repid import Message

    @router.actor
    async def chain(message: Message) -> None:
        await message.send_message(channel="next", payload=b"")

    app.include_router(router)
    async with TestClient(app) as client:
        await client.send_message(channel="default", payload=b"", headers={"topic": "chain"})
    assert channels == ["default", "next"]
