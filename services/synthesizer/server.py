"""Wiring only: settings -> backend, Embedder gateway, core, servicer -> a running gRPC server.

`python -m services.synthesizer.server --help` lists every setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from services.common import tracing
from services.common.auth import AuthSettingsError, authenticator_from, warn_if_open
from services.common.auth_interceptor import AuthInterceptor
from services.common.grpc_server import GrpcServer, ServerLimits, configure_logging, run_until_signalled
from services.common.tls import TLSError
from services.common.weights import WeightsError
from services.synthesizer import settings as settings_mod
from services.synthesizer.backends import load_backend
from services.synthesizer.backends.base import Backend
from services.synthesizer.core import Synthesizer
from services.synthesizer.embedder_client import EmbedderGateway
from services.synthesizer.scoring import ScoringSettingsError
from services.synthesizer.servicer import SynthesizerServicer
from voxcache.v1 import synthesizer_pb2, synthesizer_pb2_grpc

log = logging.getLogger("voxcache.synthesizer")
SERVICE_NAME = synthesizer_pb2.DESCRIPTOR.services_by_name["Synthesizer"].full_name


@dataclass
class RunningSynthesizer:
    server: GrpcServer
    core: Synthesizer
    pool: ThreadPoolExecutor
    warm_up: asyncio.Task[None]

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        self.warm_up.cancel()
        await self.core.close()
        self.pool.shutdown(wait=True, cancel_futures=True)


def gateway(settings: settings_mod.SynthesizerSettings) -> EmbedderGateway:
    """The channel to the Embedder; its TLS files are checked here, so a bad one stops the start."""
    try:
        return EmbedderGateway(
            settings.embedder_address,
            margin_s=settings.embedder_margin_ms / 1000,
            default_timeout_s=settings.embedder_timeout_s,
            tls=settings.embedder_tls,
            token=settings.embedder_token,
        )
    except TLSError as exc:
        raise TLSError(f"--embedder-tls-ca/--embedder-tls-cert/--embedder-tls-key: {exc}") from None
    except ValueError as exc:  # a token gRPC metadata cannot carry
        raise TLSError(f"VOXCACHE_SYNTHESIZER_EMBEDDER_TOKEN: {exc}") from None


async def start(
    settings: settings_mod.SynthesizerSettings, backends: Mapping[str, Backend] | None = None
) -> RunningSynthesizer:
    """Build and start everything; `backends` lets tests share loaded models."""
    authenticator = authenticator_from(
        settings, verifies_clients=bool(settings.tls_client_ca)
    )  # bad auth settings refuse to start first
    warn_if_open(authenticator, settings.host)
    interceptor = AuthInterceptor(authenticator)
    credentials = settings.tls.credentials()  # a bad certificate stops the start before any model loads
    embedder = gateway(settings)
    backends = dict(backends) if backends is not None else {settings.backend: load_backend(settings)}
    pool = ThreadPoolExecutor(max_workers=settings.synthesis_concurrency, thread_name_prefix="tts")
    core = Synthesizer(
        backends,
        default_backend=settings.backend if settings.backend in backends else next(iter(backends)),
        embedder=embedder,
        model_pool=pool,
        settings=settings,
    )
    server = GrpcServer(
        f"{settings.host}:{settings.port}",
        [
            (
                SERVICE_NAME,
                lambda s: synthesizer_pb2_grpc.add_SynthesizerServicer_to_server(SynthesizerServicer(core), s),
            )
        ],
        # Requests carry reference audio (16 MiB max) or an inline multi-MB conditioning bundle.
        ServerLimits(max_receive_bytes=32 * 1024 * 1024),
        credentials,
        interceptors=[interceptor],
        health_address=f"{settings.host}:{settings.health_port}" if settings.health_port else None,
    )
    await server.start(serving=False)

    async def warm_then_serve() -> None:
        """Health turns SERVING once the warm-up has run (kokoro embeds its bundled voices
        through the Embedder), so no first request waits for it behind a SERVING status. A
        warm-up that failed (Embedder not up yet) is retried by the first request."""
        await core.warm_up()
        await server.set_serving()

    warm_up = asyncio.create_task(warm_then_serve())
    log.info(
        "Synthesizer serving on %s:%d, %s (backends: %s; Embedder at %s, %s)",
        settings.host,
        server.port,
        settings.tls.describe(),
        ", ".join(backends),
        settings.embedder_address,
        "plaintext" if settings.embedder_tls is None else "TLS",
    )
    return RunningSynthesizer(server, core, pool, warm_up)


def main(argv: list[str] | None = None) -> None:
    settings = settings_mod.parse(argv)
    configure_logging(settings.log_level)

    async def serve() -> None:
        await run_until_signalled(await start(settings))

    try:
        tracing.configure_from_environment("voxcache-synthesizer")  # before start: servers take its interceptors
        asyncio.run(serve())
    except (WeightsError, AuthSettingsError, TLSError, tracing.TracingConfigError, ScoringSettingsError) as exc:
        raise SystemExit(f"voxcache-synthesizer: {exc}") from None
    finally:
        tracing.shutdown()  # spans still queued are exported before the process exits


if __name__ == "__main__":
    main()
