"""The URLs RedisServer takes: one node (or any Cluster node), or the sentinels of a master."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repid.connections.base import redact_url
from repid.connections.redis import RedisServer
from repid.connections.redis._client import parse_redis_url
from repid.errors import ConfigurationError


def test_sentinel_url_with_credentials_hosts_service_and_db() -> None:
    target = parse_redis_url("redis+sentinel://:s3cret@h1:26379,h2:26380,[::1]/orders/4")
    assert target.hosts == (("h1", 26379), ("h2", 26380), ("::1", 26379))
    assert (target.service_name, target.db, target.password, target.tls) == (
        "orders",
        4,
        "s3cret",
        False,
    )
    assert target.host == "h1:26379"
    assert target.pathname == "/orders/4"
    assert "s3cret" not in repr(target)
    assert parse_redis_url("rediss+sentinel://u:p@h/svc").tls
    assert parse_redis_url("redis+sentinel://h/svc").db == 0


def test_plain_urls() -> None:
    target = parse_redis_url("redis://user:pw@node:7000/0?ssl_cert_reqs=none")
    assert target.hosts == (("node", 7000),) and target.service_name is None
    assert (target.username, target.password) == ("user", "pw")
    assert target.node_url() == "redis://node:7000/0?ssl_cert_reqs=none"
    assert parse_redis_url("redis://").hosts == (("localhost", 6379),)
    assert parse_redis_url("rediss://[::1]:6390/2").node_url() == "rediss://[::1]:6390/2"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://h/0", "starts with redis://"),
        ("redis://a:1,b:2/0", "only in a redis\\+sentinel:// URL"),
        ("redis+sentinel://h1,h2", "names the service"),
        ("redis+sentinel://h1/svc/x", "database number"),
        ("redis://h/a/b", "database number"),
        ("redis://h:99999/0", "invalid port"),
        ("redis://h:abc/0", "invalid port"),
    ],
)
def test_bad_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_redis_url(url)


def test_server_metadata_and_options() -> None:
    server = RedisServer("redis+sentinel://:pw@s1:26379,s2:26379/main/1")
    assert (server.host, server.pathname) == ("s1:26379", "/main/1")
    assert server.mode is None  # known once connected
    assert server.retry_attempts == 20 and server.retry_delay == 1.0
    assert "pw" not in repr(server)
    single = RedisServer("redis://h:6379/0")
    assert single.retry_attempts == 6 and single.retry_delay == 5.0
    assert RedisServer("redis://h", retry_attempts=3, retry_delay=0.5).retry_attempts == 3
    with pytest.raises(ConfigurationError, match="Sentinel"):
        RedisServer("redis+sentinel://s1/main", cluster=True)
    with pytest.raises(ConfigurationError, match="only database 0"):
        RedisServer("redis://h/3", cluster=True)
    with pytest.raises(ValueError, match="wait_replicas"):
        RedisServer("redis://h", wait_replicas=-1)
    assert redact_url("redis+sentinel://:pw@s1:1,s2:2/main/0") == (
        "redis+sentinel://:***@s1:1,s2:2/main/0"
    )


_host = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True)


@given(
    hosts=st.lists(st.tuples(_host, st.integers(1, 65535)), min_size=1, max_size=4),
    service=st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
    db=st.integers(0, 15),
    password=st.none() | st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True),
)
def test_sentinel_urls_round_trip(
    hosts: list[tuple[str, int]], service: str, db: int, password: str | None
) -> None:
    netloc = ",".join(f"{h}:{p}" for h, p in hosts)
    auth = f":{password}@" if password else ""
    target = parse_redis_url(f"redis+sentinel://{auth}{netloc}/{service}/{db}")
    assert target.hosts == tuple(hosts)
    assert (target.service_name, target.db, target.password) == (service, db, password)
