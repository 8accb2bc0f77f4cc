"""AmqpServer with a list of URLs (one per RabbitMQ node): the first that answers is used.

Against the one test broker, with a closed port standing for a node that is down; the
three-node cluster's failover is in tests/clusters/test_failover_amqp.py.
"""

from __future__ import annotations

import socket

import pytest

from repid.connections.amqp import AmqpServer
from repid.errors import BrokerConnectionError
from tests import brokers

pytestmark = pytest.mark.amqp


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"amqp://guest:secret-pw@127.0.0.1:{port}/"


async def test_a_node_that_is_down_is_skipped() -> None:
    down, up = _closed_port_url(), brokers.amqp_url()
    server = AmqpServer([down, up])
    assert "secret-pw" not in repr(server) and server.urls[0].endswith(down.split("@")[1])
    assert server.host == down.split("@")[1].rstrip("/")  # AsyncAPI: the first node
    async with server.connection():
        assert server.connected_url is not None
        assert server.connected_url.endswith(up.split("@")[1])
        await server.management_request("GET", "/queues/nothing-here")  # the link works
    assert server.connected_url is None


async def test_no_node_answers() -> None:
    urls = [_closed_port_url(), _closed_port_url()]
    server = AmqpServer(urls, connect_timeout=0.5)
    with pytest.raises(BrokerConnectionError) as err:
        await server.connect()
    text = str(err.value)  # names every node, never the password
    assert all(url.split("@")[1] in text for url in urls) and "secret-pw" not in text


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        AmqpServer([])
