"""Wiring only: settings -> encoder, caches, core, servicer -> a running gRPC server.

`python -m services.embedder.server --help` lists every setting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from services.common import tracing
from services.common.auth import AuthSettingsError, authenticator_from, warn_if_open
from services.common.auth_interceptor import AuthInterceptor
from services.common.config import redact_url
from services.common.grpc_server import GrpcServer, ServerLimits, configure_logging, run_until_signalled
from services.common.paths import default_data_dir
from services.common.redis_server import FolderInUse, LocalRedis
from services.common.tls import TLSError
from services.common.weights import WeightsError
from services.embedder import settings as settings_mod
from services.embedder.cache import keys
from services.embedder.cache.lease import Leases
from services.embedder.cache.local import LocalCache
from services.embedder.cache.record import Keyring, KeyringError
from services.embedder.cache.redis_store import RedisStore
from services.embedder.cache.store import NoStore, Store, StoreAuthError, StoreUnavailable
from services.embedder.cache.tiered import TieredCache
from services.embedder.cache.writeback import WriteBackQueue
from services.embedder.core import Embedder
from services.embedder.encoders import load_encoders
from services.embedder.encoders.base import Encoder
from services.embedder.fleet import Fleet
from services.embedder.metrics import EmbedderStats, serve_metrics
from services.embedder.servicer import EmbedderServicer, add_to_server
from services.embedder.voices import MemoryVoiceRegistry, RedisVoiceRegistry, VoiceRegistries, VoiceRegistry
from voxcache.v1 import embedder_pb2

log = logging.getLogger("voxcache.embedder")
SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name


@dataclass
class RunningEmbedder:
    server: GrpcServer
    core: Embedder
    pool: ThreadPoolExecutor
    private_redis: LocalRedis | None = None
    metrics: object | None = field(default=None, repr=False)
    #: Publishes this worker's counters for the others' GetStats (fleet.py); None without Redis.
    publisher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        if self.publisher is not None:
            self.publisher.cancel()
        if self.core.fleet is not None:
            await self.core.fleet.leave()
        await self.core.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.metrics is not None:
            self.metrics[0].shutdown()  # type: ignore[index]
        if self.private_redis is not None:
            self.private_redis.close()


def _redis_store(
    settings: settings_mod.EmbedderSettings, stats: EmbedderStats
) -> tuple[RedisStore | None, LocalRedis | None]:
    """The configured Redis, a private redis-server when none is configured, or None."""
    url, private = settings.redis_url, None
    if url.lower() == "none":
        log.warning("Redis disabled: in-process cache only, nothing is shared between workers")
        return None, None
    if not url:
        try:
            private = _start_private_redis(settings)
            url = private.url
            kept = f"data in {private.dir}" if private.persistent else "throwaway data"
            log.info("no Redis URL configured: started a private redis-server on port %d (%s)", private.port, kept)
        except (OSError, RuntimeError, TimeoutError) as exc:
            log.warning("no Redis URL and no private redis-server (%s): in-process cache only", exc)
            return None, None

    on_error, on_wrong_type = store_counters(stats)
    store = RedisStore(
        url,
        password=settings.redis_password,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_interval_s=settings.redis_retry_s,
        on_error=on_error,
        on_wrong_type=on_wrong_type,
    )
    log.info("cache L2: %s", redact_url(url))
    return store, private


def private_redis_dir(settings: settings_mod.EmbedderSettings) -> Path | None:
    """Where the private redis-server keeps its AOF; None for a throwaway one (--redis-data-dir none)."""
    if settings.redis_data_dir.lower() == "none":
        return None
    if settings.redis_data_dir:
        return Path(settings.redis_data_dir).expanduser()
    return default_data_dir() / "embedder-redis"


def _start_private_redis(settings: settings_mod.EmbedderSettings) -> LocalRedis:
    """A private redis-server on its data folder; a throwaway one if another process holds that folder."""
    folder = private_redis_dir(settings)
    if folder is not None:
        try:
            return LocalRedis(data_dir=folder).start()
        except FolderInUse as exc:
            # Two redis-servers on one AOF would corrupt it; a second Embedder still gets a Redis.
            log.warning("%s; this Embedder's registered voices will NOT survive a restart", exc)
    return LocalRedis().start()


def write_back_queue(settings: settings_mod.EmbedderSettings) -> WriteBackQueue:
    return WriteBackQueue(
        max_entries=settings.write_back_entries,
        max_bytes=settings.write_back_mb * 1024 * 1024,
        drain_every_s=settings.redis_retry_s,
    )


def store_counters(stats: EmbedderStats) -> tuple[Callable[[], None], Callable[[], None]]:
    """RedisStore's on_error and on_wrong_type, counting into `stats` (the tests' stores use them too)."""

    def count_error() -> None:
        stats.redis_errors += 1

    def count_wrong_type() -> None:
        stats.wrong_type_keys += 1

    return count_error, count_wrong_type


def worker_id(settings: settings_mod.EmbedderSettings) -> str:
    """Who answers: host, process id, and the index among --workers when there is one."""
    index = f"/{settings.worker_index}" if settings.worker_index >= 0 else ""
    return f"{socket.gethostname()}:{os.getpid()}{index}"


def build_core(
    settings: settings_mod.EmbedderSettings,
    encoders: Mapping[str, Encoder],
    redis: RedisStore | None,
    pool: ThreadPoolExecutor,
    stats: EmbedderStats,
    keyring: Keyring,
) -> Embedder:
    """The Embedder over its cache and registry: shared through Redis, or this process's own."""
    store: Store = redis if redis is not None else NoStore()
    leases = None
    if redis is not None and settings.lease_ms > 0:
        leases = Leases(
            redis,
            keys.lease_channel(settings.cache_prefix),
            owner=worker_id(settings),
            ttl_ms=settings.lease_ms,
            poll_s=settings.lease_poll_ms / 1000,
        )

    def registry(tenant: str) -> VoiceRegistry:
        if redis is None:
            return MemoryVoiceRegistry()
        return RedisVoiceRegistry(
            redis, prefix=keys.scope(settings.cache_prefix, tenant), trust_s=settings.voice_cache_s
        )

    core = Embedder(
        encoders,
        default_encoder="ecapa" if "ecapa" in encoders else next(iter(encoders)),
        cache=TieredCache(
            LocalCache(settings.local_cache_mb * 1024 * 1024),
            store,
            default_ttl_s=settings.default_ttl_s,
            write_back=None if redis is None else write_back_queue(settings),
            keyring=keyring,
            on_drop=stats.record_dropped_extraction,
            leases=leases,
        ),
        voices=VoiceRegistries(registry),
        model_pool=pool,
        settings=settings,
        stats=stats,
    )
    core.worker = worker_id(settings)
    if redis is not None:
        core.fleet = Fleet(redis, keys.workers(settings.cache_prefix), core.worker, settings.worker_stats_s)
    return core


async def start(
    settings: settings_mod.EmbedderSettings, encoders: Mapping[str, Encoder] | None = None
) -> RunningEmbedder:
    """Build and start everything; `encoders` lets tests share one loaded model."""
    stats = EmbedderStats()
    keyring = Keyring.parse(settings.cache_hmac_keys)  # malformed keys refuse to start before anything runs
    authenticator = authenticator_from(
        settings, verifies_clients=bool(settings.tls_client_ca)
    )  # so do bad auth settings
    warn_if_open(authenticator, settings.host)
    interceptor = AuthInterceptor(authenticator)
    credentials = settings.tls.credentials()  # and a bad certificate or key
    encoders = dict(encoders) if encoders is not None else load_encoders(settings)
    redis, private = _redis_store(settings, stats)
    if redis is not None and not keyring.secrets:
        log.warning(
            "cache values in Redis are only checksummed, not signed: anyone who can write to this Redis can "
            "make the Embedder serve tensors of their choosing; set VOXCACHE_CACHE_HMAC_KEYS (see README)"
        )
    pool = ThreadPoolExecutor(max_workers=settings.model_workers, thread_name_prefix="model")
    core = build_core(settings, encoders, redis, pool, stats, keyring)
    try:
        await core.cache.store.check(settings.cache_prefix)
    except StoreUnavailable:
        log.warning("Redis not reachable at start; serving from the in-process cache until it is")
    except StoreAuthError:
        await core.close()
        pool.shutdown()
        if private is not None:
            private.close()
        raise
    server = GrpcServer(
        f"{settings.host}:{settings.port}",
        [(SERVICE_NAME, lambda s: add_to_server(EmbedderServicer(core), s))],
        # Room for the largest accepted clip plus framing; bigger messages get RESOURCE_EXHAUSTED from gRPC itself.
        ServerLimits(max_receive_bytes=settings.max_audio_bytes + 1024 * 1024),
        credentials,
        interceptors=[interceptor],
        health_address=f"{settings.host}:{settings.health_port}" if settings.health_port else None,
        reuse_port=settings.reuse_port,
    )
    await server.start(serving=not settings.warm_start)
    if settings.warm_start:
        await core.warm_start()  # health says NOT_SERVING until L1 holds the hottest entries
        await server.set_serving()
    running = RunningEmbedder(server, core, pool, private)
    if core.fleet is not None:
        running.publisher = asyncio.create_task(core.fleet.publish_forever(core.snapshot))
    if settings.metrics_port:
        running.metrics = serve_metrics(settings.metrics_port, core.snapshot, settings.metrics_host)
    log.info(
        "Embedder serving on %s:%d, %s (encoders: %s)",
        settings.host,
        server.port,
        settings.tls.describe(),
        ", ".join(encoders),
    )
    return running


def main(argv: list[str] | None = None) -> None:
    settings = settings_mod.parse(argv)
    configure_logging(settings.log_level)
    if settings.workers != 1 and settings.worker_index < 0:
        from services.embedder.workers import supervise

        raise SystemExit(supervise(settings, sys.argv[1:] if argv is None else argv))

    async def serve() -> None:
        await run_until_signalled(await start(settings))

    try:
        tracing.configure_from_environment("voxcache-embedder")  # before start: servers take its interceptors
        asyncio.run(serve())
    except (StoreAuthError, WeightsError, KeyringError, AuthSettingsError, TLSError, tracing.TracingConfigError) as exc:
        raise SystemExit(f"voxcache-embedder: {exc}") from None
    finally:
        tracing.shutdown()  # spans still queued are exported before the process exits


if __name__ == "__main__":
    main()
