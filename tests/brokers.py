"""Test helpers for the real brokers run by ``scripts/brokers.sh``.

Start the brokers and export their addresses before running the tests::

    bash scripts/brokers.sh start all && source .brokers/env

Every address getter (:func:`redis_url`, :func:`amqp_url`, ...) returns the
value of its environment variable. When the variable is missing the calling
test is skipped, or failed if ``REPID_REQUIRE_BROKERS=1`` (CI sets it so that a
broker that did not start cannot silently turn the suite green).

The RabbitMQ helpers use the management HTTP API and the Pub/Sub helpers the
emulator's REST API, both with :mod:`urllib.request` and a timeout, so this
module needs only the standard library (plus pytest) and imports fine with no
broker running.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Literal, NoReturn

import pytest

__all__ = [
    "BROKERS_SCRIPT",
    "BrokerControlError",
    "BrokerHTTPError",
    "BrokerName",
    "amqp_url",
    "brokers_required",
    "kill_broker",
    "pubsub_ack",
    "pubsub_create_subscription",
    "pubsub_create_topic",
    "pubsub_delete_subscription",
    "pubsub_delete_topic",
    "pubsub_get_subscription",
    "pubsub_host",
    "pubsub_project",
    "pubsub_publish",
    "pubsub_pull",
    "rabbitmq_declare_queue",
    "rabbitmq_delete_queue",
    "rabbitmq_get_messages",
    "rabbitmq_get_queue",
    "rabbitmq_load_definitions",
    "rabbitmq_management_url",
    "rabbitmq_publish",
    "rabbitmq_queue_message_count",
    "rabbitmq_wait_message_count",
    "redis_address",
    "redis_url",
    "restart_broker",
    "start_broker",
    "stop_broker",
    "wait_for_port",
]

BROKERS_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "brokers.sh"
"""The script that installs, starts and stops the brokers."""

HTTP_TIMEOUT = 10.0
"""Seconds for one HTTP request to the management API or the emulator."""

BrokerName = Literal["redis", "rabbitmq", "pubsub"]

_ENV_BY_BROKER: dict[str, str] = {
    "redis": "REPID_TEST_REDIS_URL",
    "rabbitmq": "REPID_TEST_AMQP_URL",
    "pubsub": "REPID_TEST_PUBSUB_HOST",
}


class BrokerHTTPError(RuntimeError):
    """A management/emulator HTTP call answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        self.status = status
        text = body[:500].decode("utf-8", "replace")
        super().__init__(f"{method} {url} -> HTTP {status}: {text}")


class BrokerControlError(RuntimeError):
    """``scripts/brokers.sh`` exited non-zero; the message holds its output."""


# --- addresses --------------------------------------------------------------


def brokers_required() -> bool:
    """True when missing brokers must fail tests instead of skipping them."""
    return os.environ.get("REPID_REQUIRE_BROKERS") == "1"


def _missing(what: str) -> NoReturn:
    msg = (
        f"{what} is not set: run `bash scripts/brokers.sh start all` and "
        "`source .brokers/env` first"
    )
    if brokers_required():
        pytest.fail(msg + " (REPID_REQUIRE_BROKERS=1)", pytrace=False)
    pytest.skip(msg)


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        _missing(name)
    return value


def redis_url() -> str:
    """``REPID_TEST_REDIS_URL``, e.g. ``redis://127.0.0.1:PORT/0``."""
    return _env("REPID_TEST_REDIS_URL")


def redis_address() -> tuple[str, int]:
    """(host, port) of the test redis-server, for raw-socket checks."""
    parsed = urllib.parse.urlsplit(redis_url())
    return parsed.hostname or "127.0.0.1", parsed.port or 6379


def amqp_url() -> str:
    """``REPID_TEST_AMQP_URL``, e.g. ``amqp://guest:guest@127.0.0.1:PORT/``."""
    return _env("REPID_TEST_AMQP_URL")


def rabbitmq_management_url() -> str:
    """``REPID_TEST_RABBITMQ_MANAGEMENT_URL`` without a trailing slash."""
    return _env("REPID_TEST_RABBITMQ_MANAGEMENT_URL").rstrip("/")


def pubsub_host() -> str:
    """``REPID_TEST_PUBSUB_HOST``, e.g. ``127.0.0.1:PORT`` (plaintext gRPC and REST)."""
    return _env("REPID_TEST_PUBSUB_HOST")


def pubsub_project() -> str:
    """The emulator project tests use (``PUBSUB_PROJECT_ID``, default ``repid-test``)."""
    return os.environ.get("PUBSUB_PROJECT_ID") or "repid-test"


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> bool:
    """Poll until a TCP connect to host:port succeeds; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


# --- broker control ---------------------------------------------------------


def _control(command: str, name: BrokerName, timeout: float) -> str:
    # Only brokers this script manages may be restarted/killed: require both
    # the broker's address and the state dir the env file exported.
    _env(_ENV_BY_BROKER[name])
    _env("REPID_BROKERS_DIR")
    return run_brokers_script(command, name, timeout=timeout)


def run_brokers_script(*args: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run scripts/brokers.sh with `args`; its output, or BrokerControlError if it failed."""
    proc = subprocess.run(  # noqa: S603 - fixed script
        ["bash", str(BROKERS_SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise BrokerControlError(
            f"brokers.sh {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def start_broker(name: BrokerName, timeout: float = 300.0) -> str:
    """Start the broker (no-op if running) on its recorded port; returns the script output."""
    return _control("start", name, timeout)


def restart_broker(name: BrokerName, timeout: float = 300.0) -> str:
    """Stop and start the broker on the same port(s).

    Redis and RabbitMQ keep their data; the Pub/Sub emulator starts empty.
    """
    return _control("restart", name, timeout)


def stop_broker(name: BrokerName, timeout: float = 120.0) -> str:
    """Stop the broker cleanly; :func:`start_broker` brings it back on the same port(s)."""
    return _control("stop", name, timeout)


def kill_broker(name: BrokerName, timeout: float = 60.0) -> str:
    """SIGKILL the broker (crash simulation); :func:`start_broker` brings it back."""
    return _control("kill", name, timeout)


# --- HTTP -------------------------------------------------------------------


def _request(
    method: str,
    url: str,
    body: Any = None,
    *,
    auth: tuple[str, str] | None = None,
    allow: tuple[int, ...] = (),
) -> tuple[int, Any]:
    """Send one JSON request; returns (status, decoded JSON or None).

    Statuses >= 400 raise BrokerHTTPError unless listed in `allow`.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    # The emulator routes only requests with this content type, even for {}.
    req.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            status, raw = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        if status not in allow:
            raise BrokerHTTPError(method, url, status, raw) from None
    return status, (json.loads(raw) if raw.strip() else None)


# --- RabbitMQ (management API) ---------------------------------------------


def _mgmt_auth() -> tuple[str, str]:
    # Same user as the AMQP URL (guest/guest for scripts/brokers.sh).
    parsed = urllib.parse.urlsplit(os.environ.get("REPID_TEST_AMQP_URL", ""))
    user = urllib.parse.unquote(parsed.username or "guest")
    return user, urllib.parse.unquote(parsed.password or "guest")


def _mgmt(method: str, path: str, body: Any = None, allow: tuple[int, ...] = ()) -> tuple[int, Any]:
    return _request(method, rabbitmq_management_url() + path, body, auth=_mgmt_auth(), allow=allow)


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def rabbitmq_declare_queue(
    name: str,
    arguments: dict[str, Any] | None = None,
    durable: bool = True,
    *,
    vhost: str = "/",
) -> None:
    """Declare a queue, e.g. ``arguments={"x-queue-type": "quorum", "x-delivery-limit": 5}``.

    Re-declaring with the same settings is a no-op; different settings raise
    BrokerHTTPError (HTTP 400, PRECONDITION_FAILED).
    """
    body = {"durable": durable, "auto_delete": False, "arguments": arguments or {}}
    _mgmt("PUT", f"/api/queues/{_q(vhost)}/{_q(name)}", body)


def rabbitmq_delete_queue(name: str, *, vhost: str = "/") -> None:
    """Delete a queue with its messages; a missing queue is not an error."""
    _mgmt("DELETE", f"/api/queues/{_q(vhost)}/{_q(name)}", allow=(404,))


def rabbitmq_get_queue(name: str, *, vhost: str = "/") -> dict[str, Any] | None:
    """The management API's view of a queue (type, arguments, counters), or None."""
    status, info = _mgmt("GET", f"/api/queues/{_q(vhost)}/{_q(name)}", allow=(404,))
    return None if status == 404 else dict(info)


def rabbitmq_queue_message_count(name: str, *, vhost: str = "/") -> int:
    """Messages in the queue (ready + unacknowledged) as the management API reports it.

    The API's counters are refreshed periodically (every 0.5 s with
    scripts/brokers.sh), so right after a change use rabbitmq_wait_message_count.
    """
    info = rabbitmq_get_queue(name, vhost=vhost)
    if info is None:
        raise LookupError(f"queue {name!r} does not exist")
    return int(info.get("messages") or 0)


def rabbitmq_wait_message_count(
    name: str, expected: int, timeout: float = 10.0, *, vhost: str = "/"
) -> int:
    """Poll until the queue reports `expected` messages; returns the last count seen."""
    deadline = time.monotonic() + timeout
    while True:
        count = rabbitmq_queue_message_count(name, vhost=vhost)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def rabbitmq_load_definitions(defs: dict[str, Any]) -> None:
    """Import a definitions document (queues, exchanges, bindings, policies...)."""
    _mgmt("POST", "/api/definitions", defs)


def rabbitmq_publish(
    routing_key: str,
    body: bytes,
    *,
    exchange: str = "amq.default",
    properties: dict[str, Any] | None = None,
    vhost: str = "/",
) -> bool:
    """Publish one message through the management API; True if it was routed.

    With the default exchange the routing key is the queue name. Properties
    use AMQP 0-9-1 names (``delivery_mode``, ``headers``, ``message_id``...).
    """
    payload = {
        "properties": properties or {"delivery_mode": 2},
        "routing_key": routing_key,
        "payload": base64.b64encode(body).decode(),
        "payload_encoding": "base64",
    }
    _, answer = _mgmt("POST", f"/api/exchanges/{_q(vhost)}/{_q(exchange)}/publish", payload)
    return bool(answer and answer.get("routed"))


def rabbitmq_get_messages(
    queue: str, count: int = 1, *, requeue: bool = False, vhost: str = "/"
) -> list[dict[str, Any]]:
    """Fetch up to `count` messages (removed unless `requeue`).

    Each item is the API's dict; ``base64.b64decode(item["payload"])`` is the body.
    Note a requeue counts as a delivery for quorum queues' delivery limit.
    """
    body = {
        "count": count,
        "ackmode": "ack_requeue_true" if requeue else "ack_requeue_false",
        "encoding": "base64",
    }
    _, answer = _mgmt("POST", f"/api/queues/{_q(vhost)}/{_q(queue)}/get", body)
    return list(answer or [])


# --- Pub/Sub emulator (REST on the gRPC port) -------------------------------


def _pubsub(
    method: str, path: str, body: Any = None, allow: tuple[int, ...] = ()
) -> tuple[int, Any]:
    return _request(method, f"http://{pubsub_host()}/v1/{path}", body, allow=allow)


def _topic_path(project: str, topic: str) -> str:
    # Accept both "name" and "projects/p/topics/name".
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


def pubsub_create_topic(project: str, topic: str, *, exist_ok: bool = True) -> dict[str, Any]:
    """Create a topic (names: 3-255 chars, starting with a letter)."""
    status, answer = _pubsub(
        "PUT", f"projects/{_q(project)}/topics/{_q(topic)}", {}, allow=(409,) if exist_ok else ()
    )
    return {"name": _topic_path(project, topic)} if status == 409 else dict(answer)


def pubsub_create_subscription(
    project: str,
    subscription: str,
    topic: str,
    ack_deadline_seconds: int = 10,
    dead_letter_topic: str | None = None,
    max_delivery_attempts: int | None = None,
    *,
    extra: dict[str, Any] | None = None,
    exist_ok: bool = False,
) -> dict[str, Any]:
    """Create a pull subscription; returns the emulator's view of it.

    `topic` and `dead_letter_topic` are short names or full ``projects/...``
    paths; the dead-letter topic must exist. `extra` is merged into the REST
    body (e.g. ``{"enableMessageOrdering": True}``).
    """
    body: dict[str, Any] = {
        "topic": _topic_path(project, topic),
        "ackDeadlineSeconds": ack_deadline_seconds,
    }
    if dead_letter_topic is not None:
        policy: dict[str, Any] = {"deadLetterTopic": _topic_path(project, dead_letter_topic)}
        if max_delivery_attempts is not None:
            policy["maxDeliveryAttempts"] = max_delivery_attempts
        body["deadLetterPolicy"] = policy
    body.update(extra or {})
    path = f"projects/{_q(project)}/subscriptions/{_q(subscription)}"
    status, answer = _pubsub("PUT", path, body, allow=(409,) if exist_ok else ())
    if status == 409:
        return pubsub_get_subscription(project, subscription) or {}
    return dict(answer)


def pubsub_get_subscription(project: str, subscription: str) -> dict[str, Any] | None:
    """The subscription's configuration, or None if it does not exist."""
    status, answer = _pubsub(
        "GET", f"projects/{_q(project)}/subscriptions/{_q(subscription)}", allow=(404,)
    )
    return None if status == 404 else dict(answer)


def pubsub_delete_topic(project: str, topic: str) -> None:
    """Delete a topic; a missing topic is not an error."""
    _pubsub("DELETE", f"projects/{_q(project)}/topics/{_q(topic)}", allow=(404,))


def pubsub_delete_subscription(project: str, subscription: str) -> None:
    """Delete a subscription; a missing one is not an error."""
    _pubsub("DELETE", f"projects/{_q(project)}/subscriptions/{_q(subscription)}", allow=(404,))


def pubsub_publish(
    project: str,
    topic: str,
    data: bytes,
    attributes: dict[str, str] | None = None,
    ordering_key: str | None = None,
) -> str:
    """Publish one message through REST; returns its message id."""
    message: dict[str, Any] = {"data": base64.b64encode(data).decode()}
    if attributes:
        message["attributes"] = attributes
    if ordering_key:
        message["orderingKey"] = ordering_key
    _, answer = _pubsub(
        "POST", f"projects/{_q(project)}/topics/{_q(topic)}:publish", {"messages": [message]}
    )
    return str(answer["messageIds"][0])


def pubsub_pull(project: str, subscription: str, max_messages: int = 10) -> list[dict[str, Any]]:
    """Pull up to `max_messages` (the ``receivedMessages`` items, possibly empty).

    Items carry ``ackId``, ``deliveryAttempt`` and ``message`` (``data`` is base64).
    """
    _, answer = _pubsub(
        "POST",
        f"projects/{_q(project)}/subscriptions/{_q(subscription)}:pull",
        {"maxMessages": max_messages, "returnImmediately": True},
    )
    return list((answer or {}).get("receivedMessages", []))


def pubsub_ack(project: str, subscription: str, ack_ids: list[str]) -> None:
    """Acknowledge pulled messages by ack id."""
    _pubsub(
        "POST",
        f"projects/{_q(project)}/subscriptions/{_q(subscription)}:acknowledge",
        {"ackIds": ack_ids},
    )
