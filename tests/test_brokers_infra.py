"""The broker test infrastructure works: scripts/brokers.sh and tests/brokers.py.

Each test talks to a real broker named by the environment (see tests/brokers.py
for the skip/fail rule). The restart tests also prove that redis and RabbitMQ
come back on the same port with their data.
"""

from __future__ import annotations

import base64
import socket
import uuid

import pytest

from tests import brokers


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _redis(*args: bytes) -> bytes:
    """Send one RESP command on a fresh raw socket; return its raw reply bytes."""
    host, port = brokers.redis_address()
    cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    quit_ = b"*1\r\n$4\r\nQUIT\r\n"
    with socket.create_connection((host, port), timeout=5) as sock:
        # QUIT makes the server close after replying, so read to EOF.
        sock.sendall(cmd + quit_)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.endswith(b"+OK\r\n"), reply
    return reply[: -len(b"+OK\r\n")]


def test_missing_env_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPID_TEST_REDIS_URL", raising=False)
    monkeypatch.delenv("REPID_REQUIRE_BROKERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="REPID_TEST_REDIS_URL"):
        brokers.redis_url()
    monkeypatch.setenv("REPID_REQUIRE_BROKERS", "1")
    with pytest.raises(pytest.fail.Exception, match="REPID_TEST_REDIS_URL"):
        brokers.redis_url()


@pytest.mark.redis
def test_redis_ping_raw_socket() -> None:
    assert brokers.redis_url().startswith("redis://127.0.0.1:")
    assert _redis(b"PING") == b"+PONG\r\n"


@pytest.mark.redis
def test_redis_is_configured_for_durability() -> None:
    assert _redis(b"CONFIG", b"GET", b"appendfsync").split(b"\r\n")[4] == b"always"
    assert _redis(b"CONFIG", b"GET", b"appendonly").split(b"\r\n")[4] == b"yes"


@pytest.mark.redis
@pytest.mark.slow
def test_redis_restart_same_port_keeps_data() -> None:
    key = _name("repid-infra").encode()
    assert _redis(b"SET", key, b"survives") == b"+OK\r\n"
    before = brokers.redis_address()
    brokers.restart_broker("redis")
    assert brokers.redis_address() == before
    assert _redis(b"PING") == b"+PONG\r\n"
    assert _redis(b"GET", key) == b"$8\r\nsurvives\r\n"
    _redis(b"DEL", key)


@pytest.mark.redis
@pytest.mark.slow
def test_redis_kill_then_start_keeps_acknowledged_writes() -> None:
    key = _name("repid-infra").encode()
    assert _redis(b"SET", key, b"fsynced") == b"+OK\r\n"
    brokers.kill_broker("redis")
    with pytest.raises(OSError):
        _redis(b"PING")
    brokers.start_broker("redis")
    assert _redis(b"GET", key) == b"$7\r\nfsynced\r\n"
    _redis(b"DEL", key)


@pytest.mark.amqp
def test_rabbitmq_declare_quorum_queue_visible() -> None:
    queue = _name("infra-qq")
    brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum", "x-delivery-limit": 5})
    try:
        info = brokers.rabbitmq_get_queue(queue)
        assert info is not None
        assert info["type"] == "quorum"
        assert info["durable"] is True
        assert info["arguments"]["x-delivery-limit"] == 5
        # Same declaration again is fine; a different type is refused.
        brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum", "x-delivery-limit": 5})
        with pytest.raises(brokers.BrokerHTTPError) as err:
            brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "classic"})
        assert err.value.status == 400
    finally:
        brokers.rabbitmq_delete_queue(queue)
    assert brokers.rabbitmq_get_queue(queue) is None
    brokers.rabbitmq_delete_queue(queue)  # idempotent


@pytest.mark.amqp
def test_rabbitmq_load_definitions_publish_count_and_get() -> None:
    queue = _name("infra-defs")
    brokers.rabbitmq_load_definitions(
        {
            "queues": [
                {
                    "name": queue,
                    "vhost": "/",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {"x-queue-type": "quorum"},
                }
            ]
        }
    )
    try:
        assert (brokers.rabbitmq_get_queue(queue) or {}).get("type") == "quorum"
        assert brokers.rabbitmq_publish(queue, b"one") is True
        assert brokers.rabbitmq_publish(queue, b"two") is True
        assert brokers.rabbitmq_wait_message_count(queue, 2) == 2
        got = brokers.rabbitmq_get_messages(queue, count=2)
        assert [base64.b64decode(m["payload"]) for m in got] == [b"one", b"two"]
        assert brokers.rabbitmq_wait_message_count(queue, 0) == 0
    finally:
        brokers.rabbitmq_delete_queue(queue)


@pytest.mark.amqp
def test_rabbitmq_accepts_amqp_1_0() -> None:
    proton = pytest.importorskip("proton")
    from proton.utils import BlockingConnection

    url = brokers.amqp_url()
    queue = _name("infra-amqp10")
    brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum"})
    try:
        conn = BlockingConnection(url.rstrip("/"), timeout=10, allowed_mechs="PLAIN")
        try:
            # RabbitMQ 4 "v2" address for a queue.
            conn.create_sender(f"/queues/{queue}").send(
                proton.Message(body="hello over AMQP 1.0", durable=True)
            )
            receiver = conn.create_receiver(f"/queues/{queue}", credit=1)
            msg = receiver.receive(timeout=10)
            receiver.accept()
        finally:
            conn.close()
        assert msg.body == "hello over AMQP 1.0"
        assert brokers.rabbitmq_wait_message_count(queue, 0) == 0
    finally:
        brokers.rabbitmq_delete_queue(queue)


@pytest.mark.amqp
@pytest.mark.slow
def test_rabbitmq_restart_keeps_persistent_messages_in_quorum_queue() -> None:
    queue = _name("infra-restart")
    brokers.rabbitmq_declare_queue(queue, {"x-queue-type": "quorum"})
    try:
        assert brokers.rabbitmq_publish(queue, b"persisted", properties={"delivery_mode": 2})
        assert brokers.rabbitmq_wait_message_count(queue, 1) == 1
        mgmt_before, amqp_before = brokers.rabbitmq_management_url(), brokers.amqp_url()
        brokers.restart_broker("rabbitmq")
        assert (brokers.rabbitmq_management_url(), brokers.amqp_url()) == (mgmt_before, amqp_before)
        assert brokers.rabbitmq_wait_message_count(queue, 1, timeout=30) == 1
        got = brokers.rabbitmq_get_messages(queue)
        assert base64.b64decode(got[0]["payload"]) == b"persisted"
    finally:
        brokers.rabbitmq_delete_queue(queue)


@pytest.mark.pubsub
def test_pubsub_topic_subscription_publish_pull_ack() -> None:
    project = brokers.pubsub_project()
    topic, dlt, sub = _name("infra-topic"), _name("infra-dlt"), _name("infra-sub")
    brokers.pubsub_create_topic(project, topic)
    brokers.pubsub_create_topic(project, topic)  # exist_ok by default
    brokers.pubsub_create_topic(project, dlt)
    try:
        created = brokers.pubsub_create_subscription(
            project,
            sub,
            topic,
            ack_deadline_seconds=15,
            dead_letter_topic=dlt,
            max_delivery_attempts=5,
        )
        assert created["topic"] == f"projects/{project}/topics/{topic}"
        assert created["ackDeadlineSeconds"] == 15
        assert created["deadLetterPolicy"] == {
            "deadLetterTopic": f"projects/{project}/topics/{dlt}",
            "maxDeliveryAttempts": 5,
        }
        with pytest.raises(brokers.BrokerHTTPError) as err:
            brokers.pubsub_create_subscription(project, sub, topic)
        assert err.value.status == 409

        msg_id = brokers.pubsub_publish(project, topic, b"\x00payload", {"k": "v"})
        received = brokers.pubsub_pull(project, sub)
        assert len(received) == 1
        message = received[0]["message"]
        assert message["messageId"] == msg_id
        assert base64.b64decode(message["data"]) == b"\x00payload"
        assert message["attributes"] == {"k": "v"}
        brokers.pubsub_ack(project, sub, [received[0]["ackId"]])
        assert brokers.pubsub_pull(project, sub) == []
    finally:
        brokers.pubsub_delete_subscription(project, sub)
        brokers.pubsub_delete_topic(project, topic)
        brokers.pubsub_delete_topic(project, dlt)
    assert brokers.pubsub_get_subscription(project, sub) is None
    brokers.pubsub_delete_topic(project, topic)  # idempotent
