"""Container health check: ask this container's service over the standard gRPC health service.

    python /usr/local/bin/voxcache-healthcheck embedder|synthesizer

The address comes from the service's own settings (VOXCACHE_EMBEDDER_PORT,
VOXCACHE_PORT, ...: the same environment the server reads), so the check follows
the configuration. Exit 0 when the service reports SERVING, 1 otherwise (not yet
up, draining after SIGTERM, unreachable). grpc_health_probe is not needed.

A service with --tls-cert is checked over TLS, trusting VOXCACHE_TLS_CA (the system's
roots without it) and, for mTLS, presenting VOXCACHE_TLS_CLIENT_CERT/_KEY: the same
variables the SDK and CLI read.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICES = {"embedder": "voxcache.v1.Embedder", "synthesizer": "voxcache.v1.Synthesizer"}
ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


def target(which: str) -> tuple[str, bool]:
    """The service's address, and whether it speaks TLS."""
    if which == "embedder":
        from services.embedder.settings import parse
    else:
        from services.synthesizer.settings import parse
    settings = parse([])  # environment and defaults only, exactly as the server resolves them
    host = "127.0.0.1" if settings.host in ANY_ADDRESS else settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{settings.port}", settings.tls.enabled


def channel(address: str, tls: bool) -> grpc.Channel:
    if not tls:
        return grpc.insecure_channel(address)
    from voxcache.tls import TLS

    return grpc.secure_channel(address, (TLS.from_env() or TLS()).credentials())


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SERVICES:
        print(f"usage: {argv[0]} {'|'.join(SERVICES)}", file=sys.stderr)
        return 1  # Docker reserves 2
    address, tls = target(argv[1])
    try:
        with channel(address, tls) as opened:
            reply = health_pb2_grpc.HealthStub(opened).Check(
                health_pb2.HealthCheckRequest(service=SERVICES[argv[1]]), timeout=3
            )
    except grpc.RpcError as exc:
        print(f"{SERVICES[argv[1]]} at {address}: {exc.code().name}", file=sys.stderr)
        return 1
    except ValueError as exc:  # voxcache.tls.TLSError: a CA or client certificate that cannot be used
        print(f"{SERVICES[argv[1]]} at {address}: {exc}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{SERVICES[argv[1]]} at {address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
