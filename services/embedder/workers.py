"""`--workers N`: N Embedder processes on one address, one Redis, supervised by this process.

Why processes: one Python process serves gRPC, the cache and the model's glue on one core;
N processes use N cores. Each worker is a plain `python -m services.embedder.server` with
`--worker-index i --reuse-port true` added: it binds the same port with SO_REUSEPORT (the
kernel spreads new connections over the listening workers), loads its own model, keeps its
own L1 and shares Redis, so an entry one worker extracted is a Redis hit for the others and
cross-worker single-flight (cache/lease.py) keeps identical misses to one extraction.

What the supervisor does, and deliberately does not:
- starts the private redis-server itself when no --redis-url is set, so all workers share it;
- picks the port once when --port is 0, and gives worker i the metrics port `--metrics-port + i`
  (each worker exports its own series, labelled by `voxcache_worker_info{worker=...}`; sum them
  in Prometheus; GetStats already sums across workers through Redis, fleet.py);
- forwards SIGTERM/SIGINT to every worker, each of which drains (NOT_SERVING, in-flight calls
  finish within its grace), and exits 0 once all have;
- restarts nothing: if a worker dies, the others are stopped the same graceful way and the
  supervisor exits 1 naming it, so the process manager (compose's `restart:`, systemd,
  Kubernetes) restarts the whole group. A group is therefore either all up or going down,
  which is what makes any one worker's health answer the group's: a health probe reaches a
  random worker, and a worker that has not bound its port yet receives no connections.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from services.embedder import server as server_mod
from services.embedder.settings import EmbedderSettings

log = logging.getLogger("voxcache.embedder.workers")

#: Peak resident memory of one ECAPA worker on CPU (VmHWM 1,108 MiB with --ecapa-runtime auto:
#: torch, SpeechBrain and onnxruntime loaded and the runtimes timed at start; 903 MiB resident
#: once serving); --workers 0 never starts more workers than available memory holds at this size.
WORKER_RSS_BYTES = 1_100 * 1024 * 1024
#: How long after SIGTERM a worker may take beyond its own drain grace before it is killed.
_STOP_MARGIN_S = 10.0


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resolve_workers(requested: int) -> int:
    """`requested`, or for 0: one per usable core, no more than available memory holds."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = available_memory_bytes()
    by_memory = cores if memory is None else max(1, memory // WORKER_RSS_BYTES)
    return max(1, min(cores, by_memory))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def worker_command(argv: Sequence[str], index: int, port: int, metrics_port: int) -> list[str]:
    """The worker's command line: the supervisor's own flags, then what makes it worker `index`
    (argparse keeps the last of a repeated flag)."""
    return [
        sys.executable,
        "-m",
        "services.embedder.server",
        *argv,
        "--workers",
        "1",
        "--worker-index",
        str(index),
        "--reuse-port",
        "true",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port + index if metrics_port else 0),
    ]


def supervise(settings: EmbedderSettings, argv: Sequence[str]) -> int:
    """Run the workers until a signal (exit 0 after all drained) or a worker's death (exit 1)."""
    count = resolve_workers(settings.workers)
    env = dict(os.environ)
    private = None
    if not settings.redis_url:
        private = server_mod._start_private_redis(settings)
        env["VOXCACHE_EMBEDDER_REDIS_URL"] = private.url
        log.info("workers share a private redis-server on port %d", private.port)
    port = settings.port or free_port(settings.host)
    children = [subprocess.Popen(worker_command(argv, i, port, settings.metrics_port), env=env) for i in range(count)]
    log.info("Embedder: %d workers on %s:%d (pids %s)", count, settings.host, port, [c.pid for c in children])
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    try:
        while not stopping:
            dead = next((c for c in children if c.poll() is not None), None)
            if dead is not None:
                log.error(
                    "worker %d (pid %d) exited with %s; stopping the others (no silent restart: the process "
                    "manager restarts the group)",
                    children.index(dead),
                    dead.pid,
                    dead.returncode,
                )
                status = 1
                forward(signal.SIGTERM, None)
                break
            time.sleep(0.2)
        deadline = time.monotonic() + 5.0 + _STOP_MARGIN_S  # the workers' drain grace (ServerLimits) + margin
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time; killing it", child.pid)
                child.kill()
                child.wait()
                status = 1
    finally:
        if private is not None:
            private.close()
    log.info("all workers stopped")
    return status
