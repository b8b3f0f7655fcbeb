"""A private redis-server process: for tests, benchmarks, `voxcache up` and `run` without a Redis URL.

Debian's redis-server on a free loopback port, started from the same
deploy/redis/redis.conf that compose.yaml uses (maxmemory, `volatile-lfu`, the
append-only file with `appendfsync everysec`; the file says why). Only the port, the
loopback bind, the directory and the log file are set here.

With `data_dir` (what `voxcache up` uses unless --ephemeral, and the Embedder's own
private redis-server unless --redis-data-dir none) the directory is that folder, and it
is kept: registered voices live only in Redis, and its append-only file there brings
them back after a restart. Without it the directory is a temp one, removed by close(),
and the append-only file is switched off: nothing could ever read it back.

A data folder is locked (flock on <folder>/redis.lock, held from start() to close()
and inherited by redis-server): two redis-servers appending to one AOF corrupt it, so a
second one is refused with `FolderInUse`.

With `acl=True` (what `voxcache up` uses) it is started exactly as compose starts
its Redis, through deploy/redis/start.sh: the default user is disabled and the
only user is `embedder`, limited by deploy/redis/users.conf, with a random
password made for this run. `url` then names that user and `password` holds the
secret, to hand to the Embedder as VOXCACHE_REDIS_PASSWORD. Without it (tests,
benchmarks) the default user stays open, as before.
"""

from __future__ import annotations

import fcntl
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


#: The lock file in a data folder (see FolderInUse).
LOCK_NAME = "redis.lock"


class FolderInUse(RuntimeError):
    """Another redis-server (or its launcher) holds this data folder's lock."""


def lock_folder(folder: Path) -> int:
    """An open descriptor holding an exclusive flock on folder/redis.lock; FolderInUse if taken."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderInUse(f"Redis data folder {folder} is in use by another redis-server") from None
    return fd


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
        extra_args: Sequence[str] = (),
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
        #: Appended to the command line last (e.g. a cluster node's `--cluster-enabled yes`).
        self.extra_args = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        #: The data folder's lock (persistent only), held across stop()/start() until close().
        self._lock_fd: int | None = None

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
        if not self.persistent:
            local += ["--appendonly", "no"]  # a throwaway folder: fsyncs nobody will read back
        local += self.extra_args
        if self.acl:
            return ["sh", str(self.config_dir / "start.sh"), *local]
        return [self.binary, str(self.config_dir / "redis.conf"), *local]

    def start(self, timeout_s: float = 10.0) -> LocalRedis:
        locked_now = self.persistent and self._lock_fd is None
        if locked_now:
            self._lock_fd = lock_folder(self._dir)
        try:
            return self._start(timeout_s)
        except BaseException:
            if locked_now:
                self._unlock()
            raise

    def _start(self, timeout_s: float) -> LocalRedis:
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
                pass_fds=(*self.pass_fds, *(() if self._lock_fd is None else (self._lock_fd,))),
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

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown, no final save.

        `start()` again (same port, same folder) is a restart that must recover from the AOF alone.
        """
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        """Stop redis-server; remove its directory unless it is a data folder to keep."""
        self.stop()
        self._unlock()
        if not self.persistent:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
