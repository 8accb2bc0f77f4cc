"""The docs-examples machinery itself: the fragment name check and the marker parser must
catch what they are there to catch."""

from __future__ import annotations

import pytest

from .blocks import parse_options
from .names import check_repid_names


def test_existing_names_pass() -> None:
    source = """
import repid
from repid import Message, Repid, Router
from repid.connections.amqp import AmqpMessageHeader

app = Repid(title="t")
router = Router(channel="c")


@router.actor(channel="c", timeout=1.0, confirmation_mode="manual")
async def actor(message: Message) -> None:
    await message.ack()
    print(message.payload, repid.TestClient, app.servers.default)
    await app.send_message_json(channel="c", payload={}, headers={"topic": "actor"})
"""
    assert check_repid_names(source) == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("from repid import Nope", "no name 'Nope'"),
        ("import repid.no_such_module", "import repid.no_such_module"),
        ("import repid\nrepid.Routr()", "no attribute 'Routr'"),
        ("from repid import Message\nMessage.acknowledge", "no attribute 'acknowledge'"),
        ("from repid import Repid\napp = Repid()\napp.send_mesage()", "no attribute 'send_mesage'"),
        ("from repid import Repid\nRepid(titel='x')", "takes no argument 'titel'"),
        (
            "from repid import Router\nrouter = Router()\n@router.actor(timout=1)\ndef f(): ...",
            "takes no argument 'timout'",
        ),
    ],
)
def test_missing_names_are_reported(source: str, problem: str) -> None:
    problems = check_repid_names(source)
    assert any(problem in p for p in problems), problems


def test_marker_options() -> None:
    assert parse_options('subprocess needs=redis stop-on="worker started"', "x") == {
        "subprocess": "",
        "needs": "redis",
        "stop-on": "worker started",
    }
    with pytest.raises(ValueError, match="unknown docs-test flag"):
        parse_options("fragmnet", "x")
    with pytest.raises(ValueError, match="needs="):
        parse_options("needs=kafka", "x")
    with pytest.raises(ValueError, match="stop-on= needs the subprocess flag"):
        parse_options("stop-on=x", "x")
