"""grpc.aio server bootstrap shared by both services.

Health and reflection (v1 and v1alpha, with the protos' comments) are always on, size
limits are explicit, domain errors become rich statuses in one decorator, and
shutdown is graceful: health flips to NOT_SERVING first so load balancers stop
sending, then in-flight calls get `grace_s` to finish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from services.common import tracing
from services.common.errors import ServiceError
from services.common.grpc_errors import to_rpc_status
from services.common.health_port import HealthOnlyServer
from services.common.reflection import DescriptorIndex, ReflectionService

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

#: Keepalive that Go and Java peers accept: we allow their pings every 10 s
#: (grpc-go/grpc-java default to no pings; a 20 s client ping is common).
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)


async def _abort(context: grpc.aio.ServicerContext, error: ServiceError) -> None:
    status = rpc_status.to_status(to_rpc_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


async def _fail(context: grpc.aio.ServicerContext, exc: Exception, where: str) -> None:
    if isinstance(exc, ServiceError):
        await _abort(context, exc)
    log.exception("unhandled error in %s", where, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {where}; see server log")


def rpc_errors(method: F) -> F:
    """Map ServiceError to its status; anything else is INTERNAL with the traceback logged."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # every failure becomes a status, never a crash
            await _fail(context, exc, method.__name__)

    return wrapper  # type: ignore[return-value]


def rpc_stream_errors(method: F) -> F:
    """rpc_errors for server-streaming handlers (async generators)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _fail(context, exc, method.__name__)

    return wrapper  # type: ignore[return-value]


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The caller's deadline on the time.monotonic() clock, or None when it set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


@dataclass(frozen=True)
class ServerLimits:
    max_receive_bytes: int
    max_send_bytes: int = 64 * 1024 * 1024
    grace_s: float = 5.0


class ServiceRegistrar(Protocol):
    """What generated `add_*Servicer_to_server` functions call on the server they are given."""

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None: ...

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None: ...


class GenericRegistration:
    """Stands in for the server while generated `add_*_to_server` functions register a service:
    the generic handlers reach the server, the registered-method table does not.

    Why: grpc.aio keeps one pending request task per registered method, beside the one for
    generic calls, and after every call its serving loop `asyncio.wait`s on all of them. With
    the Embedder's 11 registered methods (its own 8 and health's 3) that is a wait on
    12 tasks, twice a call, where a server of generic handlers waits on 1. Traced in a running
    Embedder, those waits were ~100 of the ~240 Python calls per cache hit that a bare echo
    server does not make. Generic handlers find the same method handlers (a dict lookup by
    method name), so every method, interceptor and status is unchanged.
    """

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Dropped: the generic handlers added beside it serve the same methods."""


class GrpcServer:
    """One aio server hosting a set of services plus health and reflection."""

    def __init__(
        self,
        address: str,
        services: Sequence[tuple[str, Callable[[ServiceRegistrar], None]]],
        limits: ServerLimits,
        credentials: grpc.ServerCredentials | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        health_address: str | None = None,
        *,
        reuse_port: bool = False,
    ) -> None:
        """`credentials` (services.common.tls) makes the port a TLS one; None keeps it plaintext.
        `health_address` adds a plaintext port with only the health service (services.common.health_port).
        `reuse_port`: SO_REUSEPORT, so worker processes share the port (the kernel spreads
        connections over them); off otherwise, so a port already taken is an error, not a share.

        With tracing on (services.common.tracing), its interceptor comes before `interceptors`,
        so a call's server span covers authentication and continues the caller's trace."""
        self.limits = limits
        self._server = grpc.aio.server(
            interceptors=[*tracing.server_interceptors(), *interceptors],
            options=[
                ("grpc.max_receive_message_length", limits.max_receive_bytes),
                ("grpc.max_send_message_length", limits.max_send_bytes),
                ("grpc.so_reuseport", int(reuse_port)),
                *KEEPALIVE_OPTIONS,
            ],
        )
        self._names = [name for name, _ in services]
        registrar = GenericRegistration(self._server)
        for _, add in services:
            add(registrar)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registrar)
        reflection = ReflectionService([*self._names, health.SERVICE_NAME], DescriptorIndex.for_voxcache())
        self._server.add_generic_rpc_handlers(reflection.handlers())
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"could not bind gRPC server to {address}")
        self.health_server = HealthOnlyServer(health_address, self.health) if health_address else None

    async def start(self, *, serving: bool = True) -> None:
        """Start accepting calls; with serving=False health says NOT_SERVING until `set_serving`
        (a service that must warm up first keeps load balancers away until it has)."""
        await self._server.start()
        if self.health_server is not None:
            await self.health_server.start()
        if serving:
            await self.set_serving()
        else:
            for name in ("", *self._names):
                await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def set_serving(self) -> None:
        for name in ("", *self._names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        for name in ("", *self._names):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.stop(self.limits.grace_s)
        if self.health_server is not None:  # last: probes see NOT_SERVING while the main port drains
            await self.health_server.stop()


class Stoppable(Protocol):
    server: GrpcServer

    async def stop(self) -> None: ...


async def run_until_signalled(running: Stoppable) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (NOT_SERVING, drain, close)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: NOT_SERVING, draining for %.0fs", running.server.limits.grace_s)
    await running.stop()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
