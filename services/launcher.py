"""Run the whole stack locally: a private redis-server, the Embedder and the Synthesizer.

Each service is its own process, started exactly as it is deployed, and the
stack is only up once both answer their gRPC health checks. `voxcache up` and
`make demo` use this; Ctrl-C (or SIGTERM) stops everything cleanly, services
first (they drain), Redis last.

Redis runs as compose.yaml runs it (deploy/redis: the same redis.conf, the default
user disabled, an `embedder` ACL user limited to the commands the Embedder sends),
with a random password made for this run. The Embedder gets it as
VOXCACHE_EMBEDDER_REDIS_PASSWORD; the Synthesizer never sees it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port

#: Every name the services read a Redis password from (services/common/config.py: env_names).
REDIS_PASSWORD_VARS = (
    "VOXCACHE_REDIS_PASSWORD",
    "VOXCACHE_EMBEDDER_REDIS_PASSWORD",
    "VOXCACHE_SYNTHESIZER_REDIS_PASSWORD",
)


def wait_serving(target: str, service: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited with code {process.returncode}; see its log above")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise TimeoutError(f"{service} did not become healthy within {timeout_s:.0f}s")


@dataclass
class Stack:
    embedder_port: int = 0
    synthesizer_port: int = 0
    log_level: str = "WARNING"
    redis: LocalRedis | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def embedder(self) -> str:
        return f"127.0.0.1:{self.embedder_port}"

    @property
    def synthesizer(self) -> str:
        return f"127.0.0.1:{self.synthesizer_port}"

    def _spawn(self, module: str, service: str, target: str, *args: str, redis_password: str | None = None) -> None:
        # Inherited Redis passwords (say, from a compose .env) must not reach either service.
        env = {k: v for k, v in os.environ.items() if k not in REDIS_PASSWORD_VARS}
        env["VOXCACHE_LOG_LEVEL"] = self.log_level
        if redis_password is not None:
            env["VOXCACHE_EMBEDDER_REDIS_PASSWORD"] = redis_password  # the most specific name wins
        process = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=REPO_ROOT)
        self.processes.append(process)
        wait_serving(target, service, process)

    def start(self) -> Stack:
        try:
            self.redis = LocalRedis(acl=True).start()
            self.embedder_port = self.embedder_port or free_port()
            self.synthesizer_port = self.synthesizer_port or free_port()
            self._spawn(
                "services.embedder.server", "voxcache.v1.Embedder", self.embedder,
                "--port", str(self.embedder_port), "--metrics-port", "0", "--redis-url", self.redis.url,
                redis_password=self.redis.password,
            )  # fmt: skip
            self._spawn(
                "services.synthesizer.server", "voxcache.v1.Synthesizer", self.synthesizer,
                "--port", str(self.synthesizer_port), "--embedder-address", self.embedder,
            )  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.redis is not None:
            self.redis.close()
            self.redis = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voxcache up", description=__doc__)
    parser.add_argument("--embedder-port", type=int, default=50051)
    parser.add_argument("--synthesizer-port", type=int, default=50052)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    with Stack(args.embedder_port, args.synthesizer_port, args.log_level) as stack:
        assert stack.redis is not None
        print(f"redis-server  127.0.0.1:{stack.redis.port} (ACL user {stack.redis.username})", flush=True)
        print(f"Embedder      {stack.embedder}", flush=True)
        print(f"Synthesizer   {stack.synthesizer}", flush=True)
        print("voxcache is up; Ctrl-C stops it", flush=True)
        try:
            while not stop and all(p.poll() is None for p in stack.processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        print("stopping...", flush=True)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
