"""The worker side of `examples/flask_producer.py`: `repid run examples.order_worker:app`."""

from __future__ import annotations

import os
from typing import Annotated

from repid import Header, RedisServer, Repid, Router

CHANNEL = os.environ.get("ORDERS_CHANNEL", "orders")

app = Repid(title="Orders")
app.servers.register_server(
    "default", RedisServer(os.environ.get("REDIS_URL", "redis://localhost:6379/0")), is_default=True
)
router = Router()
charged: list[tuple[int, str | None]] = []  # what this process charged (read by the tests)


@router.actor(channel=CHANNEL)
async def charge(
    order_id: int, amount: float, source: Annotated[str | None, Header()] = None
) -> None:
    print(f"charging {amount} for order {order_id} (from {source})")
    charged.append((order_id, source))


app.include_router(router)
