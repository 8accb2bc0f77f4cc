"""The user's `myapp.routers` module that seed 002's "Connecting & Nesting Routers" imports."""

from repid import Router

router = Router(channel="myapp_tasks")


@router.actor
async def ping() -> str:
    return "pong"
