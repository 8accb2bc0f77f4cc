"""A private Pub/Sub emulator for fault injection: the emulator process, its REST API, and raw
gRPC publishes that carry exactly the fields given (no attributes, odd bytes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from ._util import free_port, http_json, wait_for

__all__ = ["PubsubBroker", "encode_publish_request"]

EMULATOR = os.environ.get(
    "REPID_PUBSUB_EMULATOR",
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2); the bytes are not checked."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_publish_request(
    topic: str, data: bytes, attributes: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """`google.pubsub.v1.PublishRequest` with one `PubsubMessage` (data = 1, attributes = 2).

    Attribute keys and values are raw bytes, so a test can send what no client library would
    (invalid UTF-8, for instance) and see what the emulator makes of it.
    """
    message = _field(1, data) if data else b""
    for key, value in attributes or []:
        message += _field(2, _field(1, key) + _field(2, value))
    return _field(1, topic.encode()) + _field(2, message)


class PubsubBroker:
    """cloud-pubsub-emulator on a free loopback port (in its own process group).

    The emulator keeps everything in memory: `restart()` loses topics, subscriptions and
    messages (the harness recreates the topology afterwards, as deployment tooling would).
    """

    name = "pubsub"

    def __init__(self, *, port: int | None = None, project: str = "repid-reliability") -> None:
        if not os.path.exists(EMULATOR):
            raise RuntimeError(f"the Pub/Sub emulator is not installed at {EMULATOR}")
        self.port = port or free_port()
        self.project = project
        self.log = Path(tempfile.mkdtemp(prefix="repid-reliability-pubsub-")) / "emulator.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    url = host

    def url_via(self, port: int) -> str:
        return f"127.0.0.1:{port}"

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self, timeout: float = 90.0) -> None:
        env = dict(os.environ, JAVA_OPTS="-Xmx768m -XX:+UseSerialGC")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [EMULATOR, "--host=127.0.0.1", f"--port={self.port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        if not wait_for(self.is_up, timeout, 0.2):
            self.stop()
            raise RuntimeError(f"the Pub/Sub emulator did not start; see {self.log}")

    def is_up(self) -> bool:
        try:
            http_json("GET", f"http://{self.host}/v1/projects/{self.project}/topics", timeout=2)
        except Exception:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    cleanup = stop

    def restart(self, down_for: float = 2.0, *, mode: str = "node") -> float:
        """Kill the emulator, stay down `down_for` s, start a fresh (empty) one on the same port.

        `mode` is accepted for symmetry with `RabbitBroker.restart` and ignored.
        """
        self.stop(signal.SIGKILL)
        time.sleep(down_for)
        self.start()
        return time.monotonic()

    # -- REST -----------------------------------------------------------------------------------

    def _rest(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return http_json(method, f"http://{self.host}/v1/{path}", body, **kwargs)

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def create(self, name: str, *, ack_deadline: int = 10, **subscription: Any) -> None:
        """A topic and a pull subscription, both called `name`."""
        quoted = urllib.parse.quote(name, safe="")
        self._rest("PUT", f"projects/{self.project}/topics/{quoted}", {}, allow=(409,))
        self._rest(
            "PUT",
            f"projects/{self.project}/subscriptions/{quoted}",
            {"topic": self.topic_path(name), "ackDeadlineSeconds": ack_deadline, **subscription},
            allow=(409,),
        )

    def delete(self, name: str) -> None:
        quoted = urllib.parse.quote(name, safe="")
        self._rest("DELETE", f"projects/{self.project}/subscriptions/{quoted}", allow=(404,))
        self._rest("DELETE", f"projects/{self.project}/topics/{quoted}", allow=(404,))

    def pull(self, subscription: str, max_messages: int = 100) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(subscription, safe="")
        answer = self._rest(
            "POST",
            f"projects/{self.project}/subscriptions/{quoted}:pull",
            {"maxMessages": max_messages, "returnImmediately": True},
        )
        return list((answer or {}).get("receivedMessages", []))

    # -- raw gRPC -------------------------------------------------------------------------------

    def publish_raw(
        self, topic: str, data: bytes, attributes: list[tuple[bytes, bytes]] | None = None
    ) -> str:
        """Publish one message over plain gRPC with exactly these fields; returns an error text
        when the emulator refuses it, else ''."""
        import grpc

        with grpc.insecure_channel(self.host) as channel:
            publish = channel.unary_unary(
                "/google.pubsub.v1.Publisher/Publish",
                request_serializer=None,
                response_deserializer=None,
            )
            try:
                publish(
                    encode_publish_request(self.topic_path(topic), data, attributes), timeout=30
                )
            except grpc.RpcError as exc:
                return f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
        return ""
