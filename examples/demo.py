"""Repid demo on the in-memory broker: a producer and a worker chaining two actors.

Run: python examples/demo.py
"""

import asyncio

from repid import InMemoryServer, Message, Repid, Router

app = Repid(title="Repid demo")
app.servers.register_server("default", InMemoryServer(), is_default=True)
router = Router()


@router.actor(channel="registration")
async def create_user(username: str, message: Message) -> None:
    user_id = len(username) * 100  # pretend we stored the user and got an id
    print(f"[worker] create_user: created {username!r} with id {user_id}")
    # Chain the next job through the same server connection.
    await message.send_message_json(
        channel="email",
        payload={"user_id": user_id, "username": username},
        headers={"topic": "send_welcome_email"},
    )


@router.actor(channel="email")
async def send_welcome_email(user_id: int, username: str) -> None:
    print(f"[worker] send_welcome_email: welcome mail to #{user_id} ({username})")


app.include_router(router)


async def main() -> None:
    async with app.servers.default.connection():
        for name in ("Alex", "Maria"):
            print(f"[producer] sending create_user for {name!r}")
            await app.send_message_json(
                channel="registration", payload={"username": name}, headers={"topic": "create_user"}
            )
        # Two users, two actors each: the worker stops after four messages.
        info = await app.run_worker(messages_limit=4, register_signals=[])
        print(f"[worker] done: processed {info.processed} messages")


if __name__ == "__main__":
    asyncio.run(main())
