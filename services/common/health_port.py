"""A second, plaintext port that serves only the standard gRPC health service.

Why: Kubernetes' native gRPC probes (`livenessProbe.grpc`, `readinessProbe.grpc`) speak
plaintext HTTP/2 only, while a service with --tls-client-ca refuses every handshake that
presents no client certificate. The health port answers the same statuses as the main
port (it shares the HealthServicer object, so NOT_SERVING during warm-up and draining is
seen on both) and nothing else: no voxcache RPC, no reflection, so opening it to the
kubelet exposes no data. 0 (the default) keeps it closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from services.common.config import setting


@dataclass(frozen=True)
class HealthPortSettings:
    """The health-port setting both services share (a base of their settings dataclasses)."""

    health_port: int = setting(
        0,
        "plaintext port serving only grpc.health.v1.Health, for Kubernetes' native gRPC probes (which cannot "
        "speak TLS); bound on --host; 0 = off",
    )


class HealthOnlyServer:
    """A grpc.aio server on `address` with `servicer` as its only service, always plaintext."""

    def __init__(self, address: str, servicer: health.aio.HealthServicer) -> None:
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self._server)
        self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"could not bind the health port to {address}")

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0)
