"""A private redis-server process: for tests, benchmarks, `voxcache up` and `run` without a Redis URL.

Debian's redis-server on a free loopback port, in its own temp directory, started
from the same deploy/redis/redis.conf that compose.yaml uses (a cache: maxmemory,
`volatile-lfu`, no persistence; the file says why). Only the port, the loopback
bind, the directory and the log file are set here.

With `data_dir` (what `voxcache up` uses unless --ephemeral) the directory is that
folder instead, and it is kept: the append-only file is switched on (`appendfsync
everysec`) because registered voices live only in Redis, and a local stack that
forgets them on every restart is useless. Without it the temp directory is removed
by close().

With `acl=True` (what `voxcache up` uses) it is started exactly as compose starts
its Redis, through deploy/redis/start.sh: the default user is disabled and the
only user is `embedder`, limited by deploy/redis/users.conf, with a random
password made for this run. `url` then names that user and `password` holds the
secret, to hand to the Embedder as VOXCACHE_REDIS_PASSWORD. Without it (tests,
benchmarks) the default user stays open, as before.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

#: The Redis settings shared with compose.yaml: redis.conf, users.conf, start.sh.
CONFIG_DIR = Path(__file__).resolve().parents[2] / "deploy" / "redis"
#: The ACL user of the Embedder (deploy/redis/users.conf).
EMBEDDER_USER = "embedder"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def read_conf(path: Path) -> dict[str, str]:
    """The directives of a redis.conf-style file: name -> the rest of its line (last one wins)."""
    directives = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            directives[name.lower()] = value.strip()
    return directives


def _command(*args: str) -> bytes:
    """One command in RESP (safe for any password)."""
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class LocalRedis:
    def __init__(
        self,
        *,
        port: int | None = None,
        acl: bool = False,
        password: str | None = None,
        binary: str = "redis-server",
        config_dir: Path = CONFIG_DIR,
        data_dir: Path | None = None,
        pass_fds: Sequence[int] = (),
        process_group: int | None = None,
    ) -> None:
        found = shutil.which(binary)
        if found is None:
            raise FileNotFoundError(f"{binary} not found; scripts/setup.sh installs it (apt-get install redis-server)")
        for name in ("redis.conf", "users.conf", "start.sh"):
            if not (config_dir / name).is_file():
                raise FileNotFoundError(f"{config_dir / name} not found: the Redis settings shared with compose.yaml")
        self.binary = found
        self.config_dir = config_dir
        self.port = port or free_port()
        self.acl = acl
        #: The embedder user's password (acl=True): random per instance, kept across stop()/start().
        self.password = (password or secrets.token_urlsafe(24)) if acl else None
        #: Kept across runs (data_dir given, AOF on) or a throwaway temp directory.
        self.persistent = data_dir is not None
        if data_dir is not None:
            # 0o700: the AOF holds every registered voice's reference audio.
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._dir = data_dir
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="voxcache-redis-"))
        #: Descriptors redis-server inherits, e.g. the launcher's lock on the data folder, so that
        #: a redis-server outliving its launcher still keeps a second stack off the same files.
        self.pass_fds = tuple(pass_fds)
        #: 0: its own process group, so a terminal's Ctrl-C reaches only the launcher, which stops Redis last.
        self.process_group = process_group
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def dir(self) -> Path:
        """redis-server's working directory: the data folder, or the temp directory close() removes."""
        return self._dir

    @property
    def username(self) -> str | None:
        return EMBEDDER_USER if self.acl else None

    @property
    def url(self) -> str:
        """No secret in it: with acl=True pass `password` separately (VOXCACHE_REDIS_PASSWORD)."""
        user = f"{self.username}@" if self.username else ""
        return f"redis://{user}127.0.0.1:{self.port}/0"

    @property
    def command(self) -> list[str]:
        """How redis-server is started: compose's start.sh (acl) or redis.conf directly; then the local overrides."""
        local = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir)]
        local += ["--logfile", str(self._dir / "redis.log")]
        if self.persistent:
            local += ["--appendonly", "yes", "--appendfsync", "everysec"]
        if self.acl:
            return ["sh", str(self.config_dir / "start.sh"), *local]
        return [self.binary, str(self.config_dir / "redis.conf"), *local]

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        env = None
        if self.acl:
            assert self.password is not None
            # Only what start.sh needs: no other secret of this process reaches redis-server.
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "REDIS_SERVER": self.binary,
                "VOXCACHE_REDIS_PASSWORD": self.password,
            }
        with (self._dir / "stderr.log").open("ab") as stderr:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                pass_fds=self.pass_fds,
                process_group=self.process_group,
            )
        probe = b""
        if self.password is not None:
            probe += _command("AUTH", EMBEDDER_USER, self.password)
        probe += _command("PING")
        expected = (b"+OK\r\n" if self.password is not None else b"") + b"+PONG\r\n"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {self._log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(probe)
                    reply = b""
                    while reply.count(b"\r\n") < expected.count(b"\r\n") and (chunk := sock.recv(256)):
                        reply += chunk
                if reply == expected:
                    return self
                if reply.startswith(b"-") and not reply.startswith(b"-LOADING"):
                    self.stop()
                    raise RuntimeError(f"redis-server refused the probe: {reply.decode(errors='replace').strip()}")
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout_s}s")

    def _log(self) -> str:
        text = ""
        for name in ("stderr.log", "redis.log"):
            path = self._dir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text[-2000:]

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
        """Stop redis-server; remove its directory unless it is a data folder to keep."""
        self.stop()
        if not self.persistent:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
