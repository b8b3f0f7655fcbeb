"""Every Embedder test that touches Redis runs twice: on one redis-server and on a Redis Cluster.

`redis_server` here overrides the root one (a single server) with a parameter, so each
test that asks for it, or for `core` / `embedder_service` built on it, is collected as
`[single]` and `[cluster]`. Both backends are session-scoped and started on first use.
"""

from __future__ import annotations

import pytest

from services.common.redis_cluster import LocalCluster
from services.common.redis_server import LocalRedis


@pytest.fixture(params=["single", "cluster"])
def redis_server(request: pytest.FixtureRequest) -> LocalRedis | LocalCluster:
    return request.getfixturevalue("single_redis" if request.param == "single" else "redis_cluster")
