"""The floors: what any grpc.aio service costs on this machine, with and without one Redis GET.

A cache hit is only interesting relative to a floor that does everything a hit cannot avoid
and nothing else. An in-process (L1) hit touches no Redis, so its floor is a bare echo; a hit
served from Redis does one round trip, so its floor is an echo plus one GET of a value the
size of the real record. Every floor method answers with as many bytes as the real response
of the series it is compared with, for a request of that series' real size, and shares with
the Embedder everything that is not the Embedder's own work: the gRPC server options
(services/common/grpc_server.py) and the Redis client (`make_client`, the factory the
Embedder's store uses, with the store's default timeout). The floor's GET is redis-py's own
`get`; the Embedder writes its GET itself, on connections of its own
(services/embedder/cache/get_connections.py), which costs less. Handlers take and return raw
bytes, so no protobuf parsing is counted on either side.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from services.common.grpc_server import KEEPALIVE_OPTIONS, ServerLimits
from services.common.redis_client import make_client
from services.embedder.settings import EmbedderSettings

FLOOR_SERVICE = "voxcache.bench.Floor"
FLOOR_VALUE_KEY = "voxcache-bench:floor:value"
#: The Embedder's own default (`--redis-timeout-ms`), which the bench's Embedder runs with.
FLOOR_REDIS_TIMEOUT_S = EmbedderSettings.redis_timeout_ms / 1000
#: The Embedder's limits at its default 16 MiB clip size: the clip plus 1 MiB of framing.
FLOOR_LIMITS = ServerLimits(max_receive_bytes=17 * 1024 * 1024)

#: Request bytes in, response bytes out: the shape of every floor handler.
Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]
#: What a server starter hands back: its port, facts for the results, and how to stop it.
Started = tuple[int, dict[str, Any], Callable[[], Awaitable[None]]]


@dataclass(frozen=True)
class FloorRoute:
    """One floor method: `response_bytes` bytes back, after one Redis GET when `redis_get`."""

    name: str
    response_bytes: int
    redis_get: bool

    @property
    def method(self) -> str:
        return f"/{FLOOR_SERVICE}/{self.name}"


async def start_echo_server(handlers: dict[str, Handler]) -> tuple[grpc.aio.Server, int]:
    """A bare grpc.aio server on 127.0.0.1 with `handlers` (method name -> handler) as its only methods.

    Same options as services/common/grpc_server.py builds for the Embedder, but no
    health, reflection or error mapping: those are not on a hit's path.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", FLOOR_LIMITS.max_receive_bytes),
            ("grpc.max_send_message_length", FLOOR_LIMITS.max_send_bytes),
            ("grpc.so_reuseport", 0),
            *KEEPALIVE_OPTIONS,
        ]
    )
    generic = grpc.method_handlers_generic_handler(
        FLOOR_SERVICE, {name: grpc.unary_unary_rpc_method_handler(h) for name, h in handlers.items()}
    )
    server.add_generic_rpc_handlers((generic,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def start_floor(redis_url: str, routes: Sequence[FloorRoute]) -> Started:
    """One server with a method per route: gRPC (+ one GET) + a response of the real size, nothing else.

    The value must already be in Redis (the parent stores it), so a missing key fails
    the start instead of turning every GET into a cheaper miss.
    """
    redis = make_client(redis_url, timeout_s=FLOOR_REDIS_TIMEOUT_S, password=None)
    value = await redis.get(FLOOR_VALUE_KEY)
    if value is None and any(route.redis_get for route in routes):
        raise RuntimeError(f"floor value {FLOOR_VALUE_KEY} is missing from Redis")

    def handler(route: FloorRoute) -> Handler:
        response = os.urandom(route.response_bytes)

        async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return response

        async def echo_get(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            await redis.get(FLOOR_VALUE_KEY)
            return response

        return echo_get if route.redis_get else echo

    server, port = await start_echo_server({route.name: handler(route) for route in routes})

    async def stop() -> None:
        await server.stop(1.0)
        await redis.aclose()

    info = {
        "routes": {
            r.name: {"method": r.method, "response_bytes": r.response_bytes, "redis_get": r.redis_get} for r in routes
        },
        "redis_value_bytes": len(value) if value is not None else 0,
    }
    return port, info, stop
