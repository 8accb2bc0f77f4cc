"""Seed 002, Testing > Preparation: `myapp/app.py`, verbatim."""

from repid import Repid, Router

app = Repid(title="My App")
router = Router()


@router.actor(channel="user_messages")
async def actor_with_args(user_id: int, user_name: str, user_messages: list[str]) -> list[str]:
    user_message = f"Hi {user_name}! Your id is: {user_id}."
    user_messages.append(user_message)
    return user_messages


app.include_router(router)
