"""The main job, end to end: start Redis and the Embedder, embed a bundled clip twice.

`make demo` runs this. The Embedder runs as its own process, exactly as deployed;
this script is only a client of it. The first call is a miss (decode + ECAPA),
the second a hit (hash + cache, no decoding).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.redis_server import LocalRedis, free_port
from services.embedder.settings import REPO_ROOT
from voxcache import EmbedderClient

SAMPLE = REPO_ROOT / "samples" / "reference_en.wav"


def wait_serving(target: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the Embedder exited with code {process.returncode}; see its log above")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service="voxcache.v1.Embedder"), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise SystemExit(f"the Embedder did not become healthy within {timeout_s:.0f}s")


def run(reference: Path) -> None:
    audio = reference.read_bytes()
    with LocalRedis() as cache:
        print(f"redis-server      private, 127.0.0.1:{cache.port} (no persistence, volatile-lfu)")
        port = free_port()
        env = {**os.environ, "VOXCACHE_REDIS_URL": cache.url, "VOXCACHE_LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "services.embedder.server", "--port", str(port), "--metrics-port", "0"]
        embedder = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
        try:
            started = time.perf_counter()
            wait_serving(f"127.0.0.1:{port}", embedder)
            print(f"Embedder          127.0.0.1:{port}, ready in {time.perf_counter() - started:.1f}s (ECAPA-TDNN)")
            print(f"reference clip    {reference.relative_to(REPO_ROOT)} ({len(audio):,} bytes)\n")
            with EmbedderClient(f"127.0.0.1:{port}", timeout=60) as client:
                for attempt in ("first", "second"):
                    t0 = time.perf_counter()
                    result = client.embed(audio)
                    rtt = (time.perf_counter() - t0) * 1000
                    server = ", ".join(f"{k} {v:.2f} ms" for k, v in result.timings_ms.items())
                    print(
                        f"{attempt:6} Embed: {'HIT ' if result.cache_hit else 'MISS'} from {result.source:8}"
                        f" round trip {rtt:8.2f} ms  (server: {server})"
                    )
                    if attempt == "first":
                        miss_ms = rtt
                hit_ms = rtt
                vector = result.speaker
                print(
                    f"\nspeaker vector    {vector.dtype} {vector.shape}, |v| = {float((vector**2).sum()) ** 0.5:.4f},"
                    f" first values {[round(float(x), 4) for x in vector[:4]]}"
                )
                print(f"cache key         {result.cache_key}")
                entry = redis.Redis.from_url(cache.url).memory_usage(result.cache_key)
                print(f"redis entry       {entry} bytes (MEMORY USAGE, key + record)")
                print(f"hit vs miss       {miss_ms / hit_ms:,.0f}x faster")
                stats = client.stats()
                print(
                    f"stats             hits {stats['hits']}, misses {stats['misses']}, "
                    f"extractions {stats['extractions']}, hit ratio {stats['hit_ratio']:.2f}"
                )
        finally:
            embedder.terminate()
            embedder.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", type=Path, default=SAMPLE, help="reference clip (WAV/FLAC/OGG, 1-30 s)")
    run(parser.parse_args().reference.resolve())


if __name__ == "__main__":
    main()
