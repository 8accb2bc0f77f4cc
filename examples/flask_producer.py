"""A Flask app that queues work for Repid workers, with `SyncProducer`.

Run Redis, then the web app and a worker (the worker lives in `examples/order_worker.py`):

    REDIS_URL=redis://localhost:6379/0 flask --app examples/flask_producer run
    REDIS_URL=redis://localhost:6379/0 repid run examples.order_worker:app
    curl -X POST localhost:5000/orders -H 'content-type: application/json' \\
        -d '{"order_id": 1, "amount": 9.5}'

The view is plain synchronous code: `producer.send_message_json` blocks until Redis has the
message, and is safe to call from every request thread at once.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request

from repid import MessageData, RedisServer, Repid, SyncProducer

CHANNEL = os.environ.get("ORDERS_CHANNEL", "orders")

app = Repid(title="Orders")
app.servers.register_server(
    "default", RedisServer(os.environ.get("REDIS_URL", "redis://localhost:6379/0")), is_default=True
)


async def stamp_source(call_next: Any, channel: str, message: MessageData, params: Any) -> Any:
    """A producer middleware: it runs for SyncProducer sends like for async ones."""
    headers = dict(message.headers or {})
    headers["source"] = "web"
    message.headers = headers
    return await call_next(channel, message, params)


app.producer_middlewares.append(stamp_source)
producer = SyncProducer(app)  # connects on the first request, in each web worker process

web = Flask(__name__)


@web.post("/orders")
def create_order() -> tuple[dict[str, Any], int]:
    order = request.get_json(force=True)
    producer.send_message_json(channel=CHANNEL, payload=order, headers={"topic": "charge"})
    return {"queued": order.get("order_id")}, 202
