"""Process-pool resilience and custom converters on the fast path."""

from __future__ import annotations

import json
import os
from typing import Any

from repid import BaseMessageT, Router, TestClient
from repid.dependencies.resolver import InputSpec

from .helpers import make_app


def maybe_die(die: bool) -> str:
    if die:
        os._exit(1)  # a child killed by the OOM killer looks the same
    return "ok"


class WholeJsonConverter:
    """A natural custom converter: decode the JSON and hand over the whole object."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec

    def convert_inputs(self, message: BaseMessageT) -> tuple[dict[str, Any], dict[str, Any]]:
        return json.loads(message.payload), {}

    def payload_schema(self) -> dict[str, Any] | None:
        return None

    def headers_schema(self) -> dict[str, Any] | None:
        return None


async def test_process_pool_recovers_after_a_child_dies() -> None:
    router = Router()
    router.actor(maybe_die, channel="c", run_in_process=True)
    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c", payload={"die": True}, headers={"topic": "maybe_die"}
        )
        await client.send_message_json(
            channel="c", payload={"die": False}, headers={"topic": "maybe_die"}
        )
        died, second = client.get_processed_messages()
    assert died.exception is not None
    assert second.result == "ok", second.exception


async def test_custom_converter_with_extra_keys() -> None:
    router = Router()

    @router.actor(channel="c", converter=WholeJsonConverter)
    async def custom(a: int) -> int:
        return a

    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(
            channel="c", payload={"a": 1, "extra": 2}, headers={"topic": "custom"}
        )
        assert client.get_processed_messages()[0].result == 1


async def test_sync_actor_runs_in_thread_and_process() -> None:
    router = Router()

    @router.actor(channel="c")
    def threaded(n: int) -> int:
        return n + 1

    router.actor(maybe_die, name="proc", channel="c", run_in_process=True)
    app, _ = make_app(router)
    async with TestClient(app) as client:
        await client.send_message_json(channel="c", payload={"n": 1}, headers={"topic": "threaded"})
        await client.send_message_json(
            channel="c", payload={"die": False}, headers={"topic": "proc"}
        )
        assert [m.result for m in client.get_processed_messages()] == [2, "ok"]
