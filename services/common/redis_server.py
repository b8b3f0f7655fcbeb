"""A private redis-server process: for tests, benchmarks and `run` without a Redis URL.

Debian's redis-server, on a free loopback port, no persistence, its own temp
directory; configured as a cache. `volatile-lfu` evicts only entries with a TTL,
so pinned voices survive memory pressure while ordinary entries age out.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalRedis:
    def __init__(
        self,
        *,
        port: int | None = None,
        maxmemory: str = "256mb",
        policy: str = "volatile-lfu",
        binary: str = "redis-server",
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise FileNotFoundError(f"{binary} not found; scripts/setup.sh installs it (apt-get install redis-server)")
        self.binary = found
        self.port = port or free_port()
        self.maxmemory = maxmemory
        self.policy = policy
        self._dir = Path(tempfile.mkdtemp(prefix="voxcache-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self._dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                "--maxmemory",
                self.maxmemory,
                "--maxmemory-policy",
                self.policy,
                "--logfile",
                str(self._dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
