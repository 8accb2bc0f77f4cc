"""Programs the packaging tests run inside the fresh virtual environments (standard library and
the installed wheel only: nothing from the repository is importable there)."""

DOCS_APP = """
from repid import InMemoryServer, Repid, Router

app = Repid(title="Packaged docs", version="1.0.0")
app.servers.register_server("default", InMemoryServer(), is_default=True)
router = Router()


@router.actor(channel="orders")
async def process_order(order_id: int) -> None:
    return None


@router.actor(channel="emails")
async def send_welcome_email(to: str) -> None:
    return None


app.include_router(router)
"""

# argv[1]: the extra; the broker address comes from the environment. Each check sends one
# message through the extra's server (or feature) and processes it with a worker.
ROUND_TRIP = """
import asyncio
import os
import sys

from repid import Repid, Router

extra = sys.argv[1]
app = Repid()
channel = os.environ.get("CHECK_CHANNEL", "check")
got = []


def server():
    if extra == "redis":
        from repid import RedisServer

        return RedisServer(os.environ["REPID_TEST_REDIS_URL"])
    if extra == "amqp":
        from repid import AmqpServer

        return AmqpServer(os.environ["REPID_TEST_AMQP_URL"])
    if extra == "pubsub":
        from repid import PubsubServer

        project = os.environ["PUBSUB_PROJECT_ID"]
        return PubsubServer(project, emulator_host=os.environ["REPID_TEST_PUBSUB_HOST"])
    from repid import InMemoryServer

    return InMemoryServer()


app.servers.register_server("default", server(), is_default=True)
router = Router()

if extra == "pydantic":
    import pydantic

    class Order(pydantic.BaseModel):
        order_id: int

    @router.actor(channel=channel)
    async def work(order: Order) -> None:
        got.append(order.order_id)

    payload = {"order": {"order_id": "7"}}
else:

    @router.actor(channel=channel)
    async def work(order_id: int) -> None:
        got.append(order_id)

    payload = {"order_id": 7}
app.include_router(router)

if extra == "opentelemetry":
    import repid.opentelemetry

    repid.opentelemetry.instrument(app)
if extra == "prometheus":
    import repid.prometheus

    repid.prometheus.instrument(app)


async def main():
    async with app.servers.default.connection():
        await app.send_message_json(channel=channel, payload=payload, headers={"topic": "work"})
        info = await app.run_worker(messages_limit=1, register_signals=[])
    assert info.processed == 1 and got == [7], (info, got)
    if extra == "yaml":
        from repid.asyncapi.server import document_yaml

        assert document_yaml(app.generate_asyncapi_schema()).startswith(b"asyncapi: 3.0.0")
    if extra == "reload":
        from repid.cli.reload import require_watchfiles

        require_watchfiles()


if extra == "uvloop":
    from repid.cli.loop import run_on_loop

    run_on_loop(main, "uvloop")
    import uvloop  # noqa: F401
else:
    asyncio.run(main())
# The other brokers' extras are not installed: using them names the missing extra.
for name, needs in (("RedisServer", "redis"), ("PubsubServer", "pubsub")):
    if needs != extra:
        try:
            getattr(__import__("repid"), name)
        except ImportError as exc:
            assert f"the {needs!r} extra" in str(exc), exc
        else:
            raise AssertionError(f"{name} imported without its extra")
print("ok", extra)
"""
