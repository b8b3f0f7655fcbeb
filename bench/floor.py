"""The floor: what any grpc.aio service with one Redis round trip costs on this machine.

A cache hit is only interesting relative to that floor, so the floor shares
everything with the Embedder that is not the Embedder's own work: the gRPC server
options (services/common/grpc_server.py), the Redis client (`make_client`, the
factory the Embedder's store uses, with the store's default timeout) and the
request/response sizes. It is a generic handler on raw bytes, so no protobuf
parsing is counted on either side.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.common.grpc_server import KEEPALIVE_OPTIONS, ServerLimits
from services.common.redis_client import make_client
from services.embedder.settings import EmbedderSettings

FLOOR_SERVICE = "voxcache.bench.Floor"
FLOOR_METHOD = f"/{FLOOR_SERVICE}/Echo"
FLOOR_VALUE_KEY = "voxcache-bench:floor:value"
#: Size of one ECAPA conditioning record in Redis, unsigned as the bench's Embedder runs
#: (see services/embedder/cache/record.py).
FLOOR_VALUE_BYTES = 822
#: The Embedder's own default (`--redis-timeout-ms`), which the bench's Embedder runs with.
FLOOR_REDIS_TIMEOUT_S = EmbedderSettings.redis_timeout_ms / 1000
#: The Embedder's limits at its default 16 MiB clip size: the clip plus 1 MiB of framing.
FLOOR_LIMITS = ServerLimits(max_receive_bytes=17 * 1024 * 1024)

#: Request bytes in, response bytes out: the shape of every floor handler.
Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]
#: What a server starter hands back: its port, facts for the results, and how to stop it.
Started = tuple[int, dict[str, Any], Callable[[], Awaitable[None]]]


async def start_echo_server(handler: Handler) -> tuple[grpc.aio.Server, int]:
    """A bare grpc.aio server on 127.0.0.1 with `handler` as its only method.

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
        FLOOR_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(handler)}
    )
    server.add_generic_rpc_handlers((generic,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def start_floor(redis_url: str, response_bytes: int) -> Started:
    """The floor: gRPC + one Redis GET + a response of the real size, and nothing else.

    The value must already be in Redis (the parent stores it), so a missing key fails
    the start instead of turning every GET into a cheaper miss.
    """
    redis = make_client(redis_url, timeout_s=FLOOR_REDIS_TIMEOUT_S, password=None)
    if await redis.get(FLOOR_VALUE_KEY) is None:
        raise RuntimeError(f"floor value {FLOOR_VALUE_KEY} is missing from Redis")
    response = os.urandom(response_bytes)

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await redis.get(FLOOR_VALUE_KEY)
        return response

    server, port = await start_echo_server(echo)

    async def stop() -> None:
        await server.stop(1.0)
        await redis.aclose()

    return port, {"response_bytes": response_bytes}, stop
