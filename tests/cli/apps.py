"""Apps the CLI tests load by import path (`tests.cli.apps:...`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repid import InMemoryServer, Repid, Router
from repid.connections.abc import DeliveryCapacity, MessageCallbackT
from repid.connections.base import BaseServer
from repid.data import MessageData

memory = InMemoryServer()
app = Repid(title="CLI test app", version="2.0.0")
app.servers.register_server("default", memory, is_default=True)
router = Router()


@router.actor(channel="orders")
async def charge(order_id: int) -> None:
    return None


@router.actor(channel="emails")
async def send_welcome_email(to: str) -> None:
    return None


app.include_router(router)
app.messages.register_operation("orders.submit", "orders")


def make_app() -> Repid:
    return app


def failing_factory() -> Repid:
    raise RuntimeError("no config")


not_an_app = 42

broken = Repid(title="Broken")
broken.servers.register_server("default", InMemoryServer(), is_default=True)
broken_router = Router()


@broken_router.actor(channel="c")
async def wants_unknown(value: Unknown) -> None:  # type: ignore[name-defined]  # noqa: F821
    return None


broken.include_router(broken_router)


class PlainServer(BaseServer):
    """A real, minimal server without the optional admin protocols."""

    protocol = "plain"

    def __init__(self) -> None:
        super().__init__(host="nowhere:1")
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        self._connected = False

    async def publish(
        self,
        *,
        channel: str,
        message: MessageData,
        server_specific_parameters: dict[str, Any] | None = None,
    ) -> None:
        return None

    async def subscribe(
        self, *, channels_to_callbacks: Mapping[str, MessageCallbackT], capacity: DeliveryCapacity
    ) -> Any:
        raise NotImplementedError


plain = Repid(title="Plain")
plain.servers.register_server("default", PlainServer(), is_default=True)
