"""The user's `app` module that seed 002's "Worker Lifecycle" `worker.py` imports: a Repid app
with a default server and one actor."""

from repid import InMemoryServer, Repid, Router

app = Repid(title="Lifecycle")
app.servers.register_server("default", InMemoryServer(), is_default=True)

router = Router(channel="lifecycle")
handled: list[int] = []


@router.actor
async def handle(n: int) -> None:
    handled.append(n)


app.include_router(router)
