"""The one way this project opens a Redis connection pool.

Fail-open needs a client that never hides an outage behind its own retries: short socket
timeouts, no retry on timeout, a bounded pool. The Embedder's store and the benchmark's
floor (echo + GET) both build their client here, so the floor measures the same client.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

DEFAULT_MAX_CONNECTIONS = 64


def make_client(
    url: str,
    *,
    timeout_s: float,
    password: str | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> Redis:
    """An asyncio client for `url` (redis:// or rediss://) that fails fast instead of retrying."""
    return Redis.from_url(
        url,
        password=password or None,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        max_connections=max_connections,
    )
