"""Which Redis client a URL needs: one node, a Redis Cluster, or a master found through Sentinel.

* `redis://host:port/db` (or `rediss://`): one node, or any node of a Redis Cluster. In "auto"
  mode the first connection asks the node (`INFO cluster`): `cluster_enabled:1` means a
  cluster, and the client becomes redis-py's `RedisCluster`, started from that node (it learns
  every other node, follows MOVED/ASK redirections and refreshes its slot map after a failover).
  `cluster=True` / `cluster=False` on `RedisServer` skips the question.
* `redis+sentinel://[[user]:password@]host1:26379,host2:26379/service_name/db` (or
  `rediss+sentinel://` for TLS to the data nodes): redis-py's asyncio `Sentinel`; every new
  connection asks the sentinels for the current master of `service_name`, so after a failover
  the next connection goes to the promoted replica. The URL's credentials are the data nodes';
  the sentinels' own are `sentinel_username` / `sentinel_password`.

Everything here is construction: the server decides what to do with the client it gets.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

__all__ = [
    "ClientSettings",
    "OpenedClient",
    "RedisMode",
    "RedisTarget",
    "close_client",
    "cluster_client",
    "open_client",
    "parse_redis_url",
    "sentinel_client",
    "standalone_client",
]

logger = logging.getLogger("repid.connections.redis")

_SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")


class RedisMode(str, enum.Enum):
    """How a `RedisServer` reaches Redis once connected."""

    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis URL (never shown with its password)."""

    hosts: tuple[tuple[str, int], ...]
    db: int
    tls: bool
    username: str | None
    password: str | None
    service_name: str | None = None
    """The Sentinel service (the master's name); None for `redis://`."""
    query: str = ""

    def __repr__(self) -> str:
        return f"RedisTarget(hosts={self.hosts!r}, db={self.db}, service={self.service_name!r})"

    @property
    def sentinel(self) -> bool:
        return self.service_name is not None

    @property
    def host(self) -> str:
        """`host:port` of the first host (AsyncAPI's `host`, OpenTelemetry's `server.address`
        and errors); for Sentinel the first sentinel, with the service in `pathname`."""
        return _host_port(*self.hosts[0])

    @property
    def pathname(self) -> str:
        return f"/{self.service_name}/{self.db}" if self.sentinel else f"/{self.db}"

    def node_url(self) -> str:
        """The first host as a credential-free `redis[s]://host:port/db` (query kept)."""
        host, port = self.hosts[0]
        scheme = "rediss" if self.tls else "redis"
        return urlunsplit((scheme, _host_port(host, port), f"/{self.db}", self.query, ""))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_host(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if not item:
        raise ValueError("the Redis URL has an empty host in its host list")
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
    else:
        host, port_text = item, ""
    if port_text and not port_text.isdigit():
        raise ValueError("the Redis URL has an invalid port")
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        raise ValueError("the Redis URL has an invalid port")
    return host or "localhost", port


def parse_redis_url(url: str) -> RedisTarget:
    """Parse `redis[s]://` and `redis[s]+sentinel://` URLs (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            "a Redis URL starts with redis://, rediss://, redis+sentinel:// or "
            f"rediss+sentinel://, got scheme {parts.scheme!r}"
        )
    sentinel = parts.scheme.endswith("+sentinel")
    credentials, at, hosts_text = parts.netloc.rpartition("@")
    if not at:
        credentials, hosts_text = "", parts.netloc
    user, colon, password = credentials.partition(":")
    username = unquote(user) if user else None
    secret = unquote(password) if colon and password else None
    items = hosts_text.split(",") if hosts_text else ["localhost"]
    if len(items) > 1 and not sentinel:
        raise ValueError(
            "a redis:// URL names one node (for a Redis Cluster any one of them); "
            "list several hosts only in a redis+sentinel:// URL"
        )
    hosts = tuple(_parse_host(item, 26379 if sentinel else 6379) for item in items)
    segments = [s for s in parts.path.split("/") if s]
    service: str | None = None
    if sentinel:
        if not segments:
            raise ValueError(
                "a redis+sentinel:// URL names the service after the hosts: "
                "redis+sentinel://host1:26379,host2:26379/SERVICE_NAME/DB"
            )
        service, segments = unquote(segments[0]), segments[1:]
    if len(segments) > 1:
        raise ValueError(f"the Redis URL path must be a database number, got {parts.path!r}")
    db_text = segments[0] if segments else "0"
    if not db_text.isdigit():
        raise ValueError(f"the Redis URL path must be a database number, got {db_text!r}")
    return RedisTarget(
        hosts=hosts,
        db=int(db_text),
        tls=parts.scheme.startswith("rediss"),
        username=username,
        password=secret,
        service_name=service,
        query=parts.query,
    )


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Connection settings shared by the three kinds of client."""

    username: str | None
    password: str | None
    max_connections: int
    socket_timeout: float
    retry: Retry
    socket_connect_timeout: float = 5.0
    health_check_interval: int = 30
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    def connection_kwargs(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "decode_responses": False,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_keepalive": True,
            "health_check_interval": self.health_check_interval,
            "retry": self.retry,
        }


def standalone_client(target: RedisTarget, settings: ClientSettings) -> Redis:
    """One node behind a blocking pool: a burst of commands beyond `max_connections` waits
    for a free connection instead of failing with "Too many connections"."""
    pool = BlockingConnectionPool.from_url(
        target.node_url(),
        max_connections=settings.max_connections,
        timeout=60,
        **settings.connection_kwargs(),
    )
    return Redis(connection_pool=pool)


def cluster_client(target: RedisTarget, settings: ClientSettings) -> RedisCluster:
    """redis-py's `RedisCluster`, started from the URL's node (it discovers the others).

    `max_connections` is per node. The cluster client retries a command that met a connection
    error or a cluster that is down (a failover in progress) with `settings.retry`, reloading
    the slot map between attempts.
    """
    if target.db != 0:
        raise ValueError(f"Redis Cluster has only database 0; the URL names database {target.db}")
    kwargs = settings.connection_kwargs()
    kwargs.pop("health_check_interval")  # per-connection PINGs on every node: not needed
    return RedisCluster.from_url(
        target.node_url(),
        max_connections=settings.max_connections,
        require_full_coverage=True,
        **kwargs,
    )


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel-managed pool that waits for a free connection like `standalone_client`'s.

    (`SentinelConnectionPool` finds the master; `BlockingConnectionPool` supplies the waiting
    `get_connection` / `release`; neither overrides what the other defines.)
    """


class _SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that asks for the master again on every reconnect.

    redis-py's asyncio connection reconnects inside `send_packed_command` to the host and port
    it had, skipping the Sentinel lookup of `connect()`: after a failover a command retried on
    a dropped connection goes back to the old master (a replica once it is restarted, which
    refuses every write) until the retries run out.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call]
        await super().send_packed_command(command, check_health)


class _SentinelSSLConnection(_SentinelConnection, SentinelManagedSSLConnection):
    pass


class _LatestMasterSentinel(Sentinel):
    """Asks every sentinel at once and believes the one with the newest configuration.

    redis-py takes the first sentinel with an answer that looks healthy, so right after a
    failover a sentinel that has not heard of it yet sends clients to the old master - and if
    that node was restarted (now a replica, or an empty master about to be demoted) they keep
    going there until the sentinel catches up. The promotion raises the service's config
    epoch, so the highest epoch names the current master.
    """

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        answers = await asyncio.gather(
            *(sentinel.sentinel_masters() for sentinel in self.sentinels), return_exceptions=True
        )
        best: tuple[int, str, int] | None = None
        errors = []
        for sentinel, answer in zip(self.sentinels, answers, strict=True):
            if isinstance(answer, BaseException):
                errors.append(f"{sentinel!r}: {type(answer).__name__}")
                continue
            state = answer.get(service_name) if isinstance(answer, dict) else None
            if not state or not self.check_master_state(state, service_name):
                continue
            epoch = int(state.get("config-epoch") or 0)
            if best is None or epoch > best[0]:
                best = (epoch, state["ip"], int(state["port"]))
        if best is None:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise MasterNotFoundError(f"no sentinel names a master for {service_name!r}{detail}")
        return best[1], best[2]


def sentinel_client(target: RedisTarget, settings: ClientSettings) -> tuple[Sentinel, Redis]:
    """redis-py's `Sentinel` and a client of `target.service_name`'s current master."""
    assert target.service_name is not None
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_connect_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_keepalive": True,
        "decode_responses": True,
    }
    if settings.sentinel_username is not None:
        sentinel_kwargs["username"] = settings.sentinel_username
    if settings.sentinel_password is not None:
        sentinel_kwargs["password"] = settings.sentinel_password
    sentinel = _LatestMasterSentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
    master = sentinel.master_for(
        target.service_name,
        connection_pool_class=_BlockingSentinelPool,
        connection_class=_SentinelSSLConnection if target.tls else _SentinelConnection,
        max_connections=settings.max_connections,
        timeout=60,
        db=target.db,
        ssl=target.tls,
        **settings.connection_kwargs(),
    )
    return sentinel, master


@dataclass(frozen=True, slots=True)
class OpenedClient:
    """A connected client, how it reaches Redis, and (Sentinel) its manager to close with it."""

    client: Redis | RedisCluster
    mode: RedisMode
    sentinel: Sentinel | None = None


async def open_client(
    target: RedisTarget,
    settings: ClientSettings,
    *,
    cluster: bool | None = None,
    cluster_settings: ClientSettings | None = None,
) -> OpenedClient:
    """Create the client `target` needs and check that it answers (PING).

    `cluster=None` asks a `redis://` node whether it is in cluster mode; True/False decides.
    Refused credentials raise at once (AuthenticationError), before any retrying command; an
    unreachable broker raises once the client's retries are spent. Nothing stays open on error.
    """
    sentinel: Sentinel | None = None
    client: Redis | RedisCluster
    mode = RedisMode.STANDALONE
    if target.sentinel:
        sentinel, client = sentinel_client(target, settings)
        mode = RedisMode.SENTINEL
    else:
        client = standalone_client(target, settings)
    try:
        await _check_credentials(client)
        if (
            mode is RedisMode.STANDALONE
            and cluster is not False
            and (cluster or await _is_cluster_node(client))
        ):
            await client.aclose(close_connection_pool=True)
            mode = RedisMode.CLUSTER
            client = cluster_client(target, cluster_settings or settings)
            await client.initialize()
        await client.ping()
    except BaseException:
        await close_client(client, sentinel)
        raise
    return OpenedClient(client, mode, sentinel)


async def close_client(client: Redis | RedisCluster, sentinel: Sentinel | None = None) -> None:
    """Close `client` (and its Sentinel manager), never raising."""
    try:
        if isinstance(client, RedisCluster):
            await client.aclose()
        else:
            await client.aclose(close_connection_pool=True)
        if sentinel is not None:
            await sentinel.aclose()
    except Exception:  # closing a client whose broker is gone: nothing to report
        logger.debug("redis.close_failed: closing the client failed", exc_info=True, extra={})


async def _is_cluster_node(client: Redis) -> bool:
    """Ask the URL's node whether cluster mode is on (`INFO cluster`: `cluster_enabled`)."""
    try:
        info: Any = await client.info("cluster")
    except ResponseError as exc:
        # "SELECT is not allowed in cluster mode": a cluster node, and a URL with a database
        # other than 0 (refused next, by `cluster_client`). Anything else (INFO refused to a
        # restricted user): take it for a single node.
        return "cluster mode" in str(exc)
    return str(info.get("cluster_enabled", 0)) == "1"


async def _check_credentials(client: Redis) -> None:
    """Open one connection without retries, so that refused credentials fail at once (redis-py
    would retry them like a network error, for many seconds). A broker that is down is left to
    the retrying command that follows. (Through Sentinel the connection asks for the master
    first; no answer is left to the retries too.)"""
    pool = client.connection_pool
    connection = pool.connection_class(**{**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)})
    try:
        await connection.connect()  # type: ignore[no-untyped-call]
    except AuthenticationError:
        raise
    except (RedisError, OSError):
        pass
    finally:
        await connection.disconnect()
