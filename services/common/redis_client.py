"""The one way this project opens a Redis connection: one server or a Redis Cluster.

Fail-open needs a client that never hides an outage behind its own retries: short socket
timeouts, no retry on timeout, a bounded pool. The Embedder's store and the benchmark's
floor (echo + GET) both build their client here, so the floor measures the same client.

`redis+cluster://` (or `rediss+cluster://`) selects redis-py's cluster client. It learns the
slot table from the seed nodes named in the URL (one is enough; several, comma-separated,
let it start while one is down), follows MOVED and ASK itself, and after a failed command
re-reads the topology on the next one, so a promoted replica is found without a restart.
It never retries a failed command: the caller's circuit breaker decides when to try again.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

DEFAULT_MAX_CONNECTIONS = 64
#: URL schemes of a Redis Cluster -> the scheme redis-py parses for the seed node.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

AnyRedis = Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def cluster_seeds(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL -> (the URL of its first seed in redis-py's own scheme, every seed's host and port)."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES[parts.scheme.lower()]
    credentials, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Redis Cluster URL {_without_secret(url)!r}: each seed must be host:port, got {item!r}")
        seeds.append((host.strip("[]"), int(port)))
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"Redis Cluster URL {_without_secret(url)!r}: a cluster has only database 0")
    first = f"{credentials}@" if credentials else ""
    first += f"{seeds[0][0]}:{seeds[0][1]}"
    return urlunsplit((scheme, first, "", parts.query, "")), seeds


def _without_secret(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def make_client(
    url: str,
    *,
    timeout_s: float,
    password: str | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> AnyRedis:
    """An asyncio client for `url` (redis://, rediss://, redis+cluster://, rediss+cluster://)
    that fails fast instead of retrying."""
    if is_cluster_url(url):
        seed_url, seeds = cluster_seeds(url)
        return RedisCluster.from_url(
            seed_url,
            startup_nodes=[ClusterNode(host, port) for host, port in seeds[1:]],
            password=password or None,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            # A master that is down leaves its slots uncovered until its replica takes over:
            # those keys fail (and are served without Redis), the other slots keep working.
            require_full_coverage=False,
            max_connections=max_connections,
        )
    return Redis.from_url(
        url,
        password=password or None,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        max_connections=max_connections,
    )
