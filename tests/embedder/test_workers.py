"""Real worker processes on one real redis-server: `--workers 2` behind one port, and two
separate Embedders whose lease holder is killed with SIGKILL mid-extraction.

Each process loads the real ECAPA (onnxruntime, one thread: no runtime timing at start).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
import redis

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis
from services.embedder.cache import keys
from services.embedder.settings import parse
from services.embedder.workers import free_port, resolve_workers, worker_command
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import raw_client
from voxcache import AsyncEmbedderClient
from voxcache.channel import CHANNEL_OPTIONS
from voxcache.errors import VoxcacheError

#: One TCP connection per client (gRPC would share one subchannel otherwise), so the kernel
#: spreads the clients over the workers.
CHANNELS = [*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]


def embedder(redis_url: str, prefix: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    args = [
        "--redis-url", redis_url, "--cache-prefix", prefix, "--port", str(port), "--metrics-port", "0",
        "--ecapa-runtime", "onnxruntime", "--threads", "1", "--lease-ms", "1500", "--lease-poll-ms", "100",
        "--worker-stats-s", "0.3", "--redis-timeout-ms", "2000", "--log-level", "WARNING", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'clients/python/src'}:{REPO_ROOT}"}
    return subprocess.Popen([sys.executable, "-m", "services.embedder.server", *args], cwd=REPO_ROOT, env=env)


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


async def wait_for_workers(address: str, workers: int, timeout_s: float = 180) -> None:
    """Until the address answers GetStats summing `workers` live workers (all loaded and publishing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with AsyncEmbedderClient(address, timeout=5) as client:
                if (await client.stats())["workers"] >= workers:
                    return
        except VoxcacheError:  # not listening yet
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"{workers} workers did not come up on {address}")


def records(redis_url: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Each worker's last published counters (fleet.py), by worker id."""
    raw = raw_client(redis_url).hgetall(keys.workers(prefix))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def embed_all(addresses: Sequence[str], audio: bytes, count: int) -> list[Any]:
    channels = [grpc.aio.insecure_channel(addresses[i % len(addresses)], options=CHANNELS) for i in range(16)]
    clients = [AsyncEmbedderClient(timeout=120, channel=channel) for channel in channels]
    try:
        return await asyncio.gather(*(clients[i % len(clients)].embed(audio) for i in range(count)))
    finally:
        for channel in channels:
            await channel.close()


def first_key(client: redis.Redis, pattern: str, timeout_s: float) -> list[bytes]:
    """Polls (5 ms) until a key matches `pattern`: the lease is visible before the model runs."""
    deadline = time.monotonic() + timeout_s
    while not (found := client.keys(pattern)) and time.monotonic() < deadline:
        time.sleep(0.005)
    return found


@pytest.fixture(scope="module")
def long_clip() -> bytes:
    samples, rate = espeak(" ".join(SENTENCES[:3]), voice="en-us+f3")
    return encode(fit_duration(samples, rate, 29.0), rate)


@pytest.fixture
def cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


def test_workers_resolve_and_command_line() -> None:
    assert resolve_workers(3) == 3
    assert 1 <= resolve_workers(0) <= (os.cpu_count() or 1)
    command = worker_command(["--workers", "0", "--port", "9", "--cache-prefix", "mine"], 1, 5000, 9464)
    assert command[1:3] == ["-m", "services.embedder.server"]
    worker = parse(command[3:])  # the supervisor's own flags first; the worker's overrides win
    assert (worker.workers, worker.worker_index, worker.reuse_port) == (1, 1, True)
    assert (worker.port, worker.metrics_port, worker.cache_prefix) == (5000, 9465, "mine")
    assert parse(worker_command([], 0, 5000, 0)[3:]).metrics_port == 0  # metrics off stays off


async def test_two_workers_share_a_port_and_extract_64_identical_misses_once(
    redis_server: LocalRedis, prefix: str, speech: dict[str, Any], cleanup: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port("127.0.0.1")
    address = f"127.0.0.1:{port}"
    supervisor = embedder(redis_server.url, prefix, port, "--workers", "2")
    cleanup.append(supervisor)
    await wait_for_workers(address, 2)

    results = await embed_all([address], speech["wav"], 64)
    assert len({r.speaker.tobytes() for r in results}) == 1
    await asyncio.sleep(1.0)  # every worker has published its counters since
    async with AsyncEmbedderClient(address, timeout=10) as client:
        stats = await client.stats()
    per_worker = records(redis_server.url, prefix)
    assert len(per_worker) == 2 and stats["workers"] == 2
    assert stats["extractions"] == 1 == sum(r["extractions"] for r in per_worker.values())
    assert stats["requests"] == 64 == sum(r["requests"] for r in per_worker.values())
    assert all(r["requests"] > 0 for r in per_worker.values()), per_worker  # the kernel spread the clients
    assert stats["worker"] in per_worker and stats["worker"].endswith(("/0", "/1"))

    # A worker that dies takes the group down (no silent restart): the supervisor exits 1.
    pid = int(stats["worker"].split(":")[1].split("/")[0])
    os.kill(pid, signal.SIGKILL)
    assert supervisor.wait(timeout=60) == 1


async def test_graceful_stop_drains_every_worker(
    redis_server: LocalRedis, prefix: str, cleanup: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port("127.0.0.1")
    supervisor = embedder(redis_server.url, prefix, port, "--workers", "2")
    cleanup.append(supervisor)
    await wait_for_workers(f"127.0.0.1:{port}", 2)
    assert stop(supervisor) == 0
    assert records(redis_server.url, prefix) == {}  # each worker removed its record as it left
    with pytest.raises(VoxcacheError):
        async with AsyncEmbedderClient(f"127.0.0.1:{port}", timeout=2) as client:
            await client.stats()


async def test_killing_the_lease_holder_mid_extraction_costs_exactly_one_more(
    redis_server: LocalRedis, prefix: str, long_clip: bytes, cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """Two separate Embedders on one Redis: A takes the lease and is killed; B takes over once."""
    ports = [free_port("127.0.0.1") for _ in range(2)]
    a, b = (embedder(redis_server.url, prefix, port) for port in ports)
    cleanup.extend([a, b])
    addresses = [f"127.0.0.1:{port}" for port in ports]
    await asyncio.gather(*(wait_for_workers(address, 1) for address in addresses))
    await wait_for_workers(addresses[1], 2)

    plain = raw_client(redis_server.url)
    leases = f"{prefix}:cond:*:lease"
    doomed = asyncio.create_task(embed_all(addresses[:1], long_clip, 1))
    held = await asyncio.to_thread(first_key, plain, leases, 30)
    assert held, "A never took the lease"
    assert plain.get(held[0]).decode().split(":")[1] == str(a.pid)  # the token names its holder
    survivors = asyncio.create_task(embed_all(addresses[1:], long_clip, 8))
    await asyncio.sleep(0.3)  # B's eight are waiting on A's lease (coalesced into one claim)
    a.kill()
    assert a.wait(timeout=30) == -signal.SIGKILL
    with pytest.raises(VoxcacheError):
        await doomed
    results = await asyncio.wait_for(survivors, 120)
    assert {r.tier for r in results} == {"computed"}
    await asyncio.sleep(1.0)  # B has published since, and A's last record (dead: never again) is stale
    async with AsyncEmbedderClient(addresses[1], timeout=10) as client:
        stats = await client.stats()
    assert stats["workers"] == 1  # A is no longer counted
    assert (stats["extractions"], stats["lease_takeovers"], stats["peer_fills"]) == (1, 1, 0)
    assert records(redis_server.url, prefix)[stats["worker"]]["extractions"] == 1
    assert plain.exists(results[0].cache_key) == 1
