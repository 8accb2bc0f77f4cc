"""Looking at the Redis clusters from outside the code under test (redis-py, plain clients)."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from tests.clusters import RunningCluster, key_slot, wait_for


def node_client(host: str, port: int) -> redis.Redis:
    return redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=2)


def alive_nodes(cluster: RunningCluster) -> list[tuple[str, int]]:
    out = []
    for host, port in cluster.nodes:
        try:
            node_client(host, port).ping()
        except redis.RedisError:
            continue
        out.append((host, port))
    return out


def slot_owners(cluster: RunningCluster) -> dict[int, tuple[str, int]]:
    """slot -> (host, port) of its master, as a live node sees it."""
    host, port = alive_nodes(cluster)[0]
    owners: dict[int, tuple[str, int]] = {}
    for start, end, master, *_ in node_client(host, port).execute_command("CLUSTER SLOTS"):
        address = (
            master[0].decode() if isinstance(master[0], bytes) else master[0],
            int(master[1]),
        )
        for slot in range(int(start), int(end) + 1):
            owners[slot] = address
    return owners


def node_id(host: str, port: int) -> str:
    raw: Any = node_client(host, port).execute_command("CLUSTER MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def masters(cluster: RunningCluster) -> list[tuple[str, int]]:
    return sorted(set(slot_owners(cluster).values()))


def channels_on(
    cluster: RunningCluster, owner: tuple[str, int], count: int, prefix: str
) -> list[str]:
    """`count` fresh channel names whose streams (`repid:NAME`) live on master `owner`."""
    owners = slot_owners(cluster)
    names: list[str] = []
    while len(names) < count:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if owners[key_slot(f"repid:{name}")] == owner:
            names.append(name)
    return names


def healthy(cluster: RunningCluster) -> bool:
    """Every node answers, the cluster is ok, and each of the three masters has a replica."""
    for host, port in cluster.nodes:
        try:
            info: Any = node_client(host, port).execute_command("CLUSTER INFO")
        except redis.RedisError:
            return False
        if info.get("cluster_state") != "ok":
            return False
    replicas = 0
    for host, port in cluster.nodes:
        role = node_client(host, port).info("replication")
        if role.get("role") == "slave" and role.get("master_link_status") == "up":
            replicas += 1
    return replicas == 3


def wait_healthy(cluster: RunningCluster, timeout: float = 60.0) -> None:
    assert wait_for(lambda: healthy(cluster), timeout, interval=0.3), "cluster not healthy"
