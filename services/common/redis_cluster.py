"""A private Redis Cluster on loopback: 3 masters + 3 replicas, for tests, benchmarks and humans.

Six `LocalRedis` nodes (Debian's redis-server, the shared deploy/redis/redis.conf) on free
ports with `--cluster-enabled yes`, joined by `redis-cli --cluster create … --cluster-replicas 1`.
`start()` returns once every node reports `cluster_state:ok` with all 16384 slots and every
replica's link to its master is up: a replica that never synced would refuse to take over.

The node timeout is short (1 s by default) so a killed master is failed over in seconds; a
cache wants `cluster-require-full-coverage no` (the other masters keep serving while one
master's slots wait for their replica) and `cluster-replica-validity-factor 0` (a replica
always takes over: a cache may lose a few writes, it must not lose the slots).

    python -m services.common.redis_cluster      # scripts/redis_cluster.sh: prints the URL, Ctrl-C stops
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import redis

from services.common.redis_server import LocalRedis, free_port

SLOTS = 16384


class LocalCluster:
    def __init__(self, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        if shutil.which("redis-cli") is None:
            raise FileNotFoundError("redis-cli not found; scripts/setup.sh installs it (apt-get install redis-server)")
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        cluster_args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-require-full-coverage", "no",
            "--cluster-replica-validity-factor", "0",
            "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
        )  # fmt: skip
        taken: set[int] = set()
        self.nodes = [self._node(cluster_args, taken) for _ in range(masters * (1 + replicas))]

    @staticmethod
    def _node(cluster_args: Sequence[str], taken: set[int]) -> LocalRedis:
        """A node on a free port with its cluster bus on another free one: the default bus
        port (port + 10000) may be taken, or beyond 65535 for the ports the OS hands out.
        `taken`: the ports already given to this cluster's nodes, which are not listening yet,
        so the OS may hand one of them out again."""

        def unused() -> int:
            while (port := free_port()) in taken:
                pass
            taken.add(port)
            return port

        port, bus = unused(), unused()
        return LocalRedis(port=port, extra_args=(*cluster_args, "--cluster-port", str(bus)))

    @property
    def url(self) -> str:
        """Every node as a seed: the client still starts while some of them are down."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self, timeout_s: float = 30.0) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            replicas = ("--cluster-replicas", str(self.replicas), "--cluster-yes")
            created = subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, *replicas],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-1500:]}{created.stderr}")
            self.wait_ready(timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def wait_ready(self, timeout_s: float = 30.0, nodes: Sequence[LocalRedis] | None = None) -> None:
        """Until every running node (or `nodes`) sees all slots served and every replica is in sync."""
        deadline = time.monotonic() + timeout_s
        waiting = "nothing asked yet"
        while time.monotonic() < deadline:
            waiting = next(filter(None, (self._not_ready(node) for node in (nodes or self.running()))), "")
            if not waiting:
                return
            time.sleep(0.05)
        raise TimeoutError(f"Redis Cluster not ready within {timeout_s}s: {waiting}")

    def _not_ready(self, node: LocalRedis) -> str:
        try:
            with redis.Redis(port=node.port, socket_timeout=1, decode_responses=True) as client:
                info = client.cluster("INFO")
                replication = client.info("replication")
        except (redis.RedisError, OSError) as exc:
            return f"node {node.port}: {exc}"
        if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != SLOTS:
            return f"node {node.port}: state {info.get('cluster_state')}, {info.get('cluster_slots_ok')} slots ok"
        if int(info.get("cluster_known_nodes", 0)) < len(self.nodes):
            return f"node {node.port} knows {info.get('cluster_known_nodes')} of {len(self.nodes)} nodes"
        if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
            return f"replica {node.port}: link to its master is {replication.get('master_link_status')}"
        return ""

    def is_master(self, node: LocalRedis) -> bool:
        with redis.Redis(port=node.port, socket_timeout=1, decode_responses=True) as client:
            return client.info("replication").get("role") == "master"

    def wait_replicated(self, master: LocalRedis, timeout_s: float = 10.0) -> None:
        """Until `master`'s replicas have acknowledged all it has written (before killing it)."""
        deadline = time.monotonic() + timeout_s
        with redis.Redis(port=master.port, socket_timeout=1, decode_responses=True) as client:
            while time.monotonic() < deadline:
                info = client.info("replication")
                offset = int(info["master_repl_offset"])
                replicas = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
                if replicas and all(int(r["offset"]) >= offset for r in replicas):
                    return
                time.sleep(0.05)
        raise TimeoutError(f"replicas of {master.port} did not catch up within {timeout_s}s")

    def running(self) -> list[LocalRedis]:
        return [node for node in self.nodes if node._proc is not None and node._proc.poll() is None]

    def node_at(self, port: int) -> LocalRedis:
        return next(node for node in self.nodes if node.port == port)

    def master_of(self, key: str | bytes) -> LocalRedis:
        """The node that serves `key`'s slot now, as any running node sees it."""
        with redis.Redis(port=self.running()[0].port, socket_timeout=1) as client:
            slot = int(client.cluster("KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return self.node_at(int(master[1]))
        raise LookupError(f"slot {slot} is not served")

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


def main() -> int:
    """Run a cluster in the foreground until Ctrl-C or SIGTERM; print its URL."""
    with LocalCluster() as cluster:
        print(f"VOXCACHE_REDIS_URL={cluster.url}", flush=True)
        print("Redis Cluster up (3 masters + 3 replicas on loopback); Ctrl-C stops it", file=sys.stderr, flush=True)
        stop = False

        def request_stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        try:
            while not stop:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
