"""Run the whole stack locally: a private redis-server, the Embedder and the Synthesizer.

Each service is its own process, started exactly as it is deployed. `voxcache up`
and `python -m services.launcher` run this; `make demo` uses Stack. The stack is
only reported up once

- both services answer their gRPC health checks with SERVING,
- the process answering on each port is the one this launch started (another
  program holding 50051 would otherwise answer the health check for a crashed
  Embedder), and
- the Synthesizer has finished its warm-up: its health goes SERVING before it has
  characterised its bundled voices, so one short real synthesis is sent and its
  answer awaited (the Synthesizer makes every request wait for that warm-up).

Ctrl-C (or SIGTERM) stops everything cleanly, services first (they drain), Redis
last, and a second Ctrl-C cannot cut that short. Failures are one line on stderr
and a non-zero exit.

Redis keeps its data in a per-user folder ($XDG_DATA_HOME/voxcache, else
~/.local/share/voxcache; --data-dir picks another) with the append-only file on,
so registered voices survive a restart; one stack at a time may use a folder (a
lock file). --ephemeral gives the old throwaway Redis in a temp folder, removed on
exit.

Redis runs as compose.yaml runs it (deploy/redis: the same redis.conf, the default
user disabled, an `embedder` ACL user limited to the commands the Embedder sends),
with a random password made for this run. The Embedder gets it as
VOXCACHE_EMBEDDER_REDIS_PASSWORD; the Synthesizer never sees it.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.paths import REPO_ROOT, default_data_dir
from services.common.redis_server import LocalRedis, free_port
from voxcache.tls import TLS

#: Every name the services read a Redis password from (services/common/config.py: env_names).
REDIS_PASSWORD_VARS = (
    "VOXCACHE_REDIS_PASSWORD",
    "VOXCACHE_EMBEDDER_REDIS_PASSWORD",
    "VOXCACHE_SYNTHESIZER_REDIS_PASSWORD",
)


def launcher_drops(name: str) -> bool:
    """Variables the services must not inherit from `voxcache up`'s environment: Redis passwords
    (say, from a compose .env), and TLS and token settings. The local stack's security is
    what `voxcache up` says (plaintext, or mTLS with --tls-dir); a VOXCACHE_TLS_CERT exported
    for a deployment (or a client's VOXCACHE_TLS_* exported for the CLI) would otherwise turn
    one service to TLS and fail the launcher's own health checks with a message about neither."""
    return name in REDIS_PASSWORD_VARS or (name.startswith("VOXCACHE_") and ("TLS_" in name or name.endswith("_TOKEN")))


EMBEDDER_SERVICE = "voxcache.v1.Embedder"
SYNTHESIZER_SERVICE = "voxcache.v1.Synthesizer"
#: The text of the warm-up request (a real synthesis: it proves the whole path works).
WARM_TEXT = "Ready."
DEFAULT_READY_TIMEOUT_S = 180.0
LOCK_NAME = "voxcache.lock"
#: What stops the stack: Ctrl-C, `kill`, the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class LaunchError(Exception):
    """The stack could not be started; the message is one line that says what to do."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a listener already holds the port (SO_REUSEADDR as gRPC sets it, so TIME_WAIT is no clash)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on the TCP port (Linux /proc); None where /proc cannot tell."""
    inodes: set[str] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            cols = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; column 9 is the inode.
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes if readable else None


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds a listening socket on `port`; None where this cannot be checked.

    The health check alone cannot tell our Embedder from another program on the same
    port, so the launcher asks the kernel who owns the listening socket.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def wait_serving(
    target: str,
    service: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    *,
    name: str | None = None,
    port_flag: str | None = None,
    tls: TLS | None = None,
) -> None:
    """Wait until `process` answers SERVING for `service` on `target`, and check that it is the one answering.

    Raises LaunchError when the process exits, when another process answers on its port,
    or when the time runs out. `name` and `port_flag` only make the messages read better.
    """
    name = name or service
    port = int(target.rsplit(":", 1)[1])
    choose = f"; choose a free one with {port_flag} PORT" if port_flag else ""
    deadline = time.monotonic() + timeout_s
    opened = grpc.insecure_channel(target) if tls is None else grpc.secure_channel(target, tls.credentials())
    with opened as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if port_in_use(port):  # it could not bind: someone else got the port first
                    raise LaunchError(f"the {name} could not listen: port {port} is taken by another program{choose}")
                raise LaunchError(f"the {name} exited with code {process.returncode} while starting; see its log above")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            except grpc.RpcError:
                time.sleep(0.2)
                continue
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                time.sleep(0.2)
                continue
            owner = listens_on(process.pid, port)
            if owner is False or process.poll() is not None:
                raise LaunchError(
                    f"port {port} answers, but not the {name} this launch started: another program holds it{choose}"
                )
            return
    raise LaunchError(f"the {name} did not become healthy within {timeout_s:.0f} s; see its log above")


def warm_clip(seconds: float = 2.0, rate: int = 16_000) -> bytes:
    """The warm-up request's reference: a voiced-sounding synthetic tone, the same bytes every time.

    Not samples/reference_en.wav: `make demo` shows that clip's first Embed as a miss, and a
    warm-up that had cached it would turn the miss into a hit. Fixed bytes mean one small
    cache entry, however often the stack starts.
    """
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))  # a 140 Hz buzz with harmonics
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)  # about four syllables a second
    pcm = (0.25 * voice * syllables / np.max(np.abs(voice)) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def wait_warm(target: str, timeout_s: float = DEFAULT_READY_TIMEOUT_S, tls: TLS | None = None) -> float:
    """Send one short real synthesis and wait for it; returns its seconds.

    The Synthesizer reports SERVING at once and characterises its backends' voices in
    the background (kokoro: each bundled voice through the Embedder); every request
    waits for that warm-up to finish. So the answer to this request means the warm-up
    is over and the first `voxcache say` will not pay for it.
    """
    from voxcache.errors import VoxcacheError
    from voxcache.synthesizer import SynthesizerClient

    started = time.monotonic()
    try:
        with SynthesizerClient(target, timeout=timeout_s, tls=tls) as client:
            client.say(WARM_TEXT, voice=warm_clip())
    except VoxcacheError as error:
        raise LaunchError(f"the Synthesizer's warm-up request failed ({error}); see its log above") from None
    return time.monotonic() - started


class DataDirLock:
    """One stack per data folder: an exclusive flock on <folder>/voxcache.lock.

    Two redis-servers appending to the same AOF would corrupt it. The lock's descriptor
    is also handed to redis-server, so a redis-server left running by a killed launcher
    keeps holding it.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> DataDirLock:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LaunchError(
                f"cannot use data folder {self.path.parent}: {exc.strerror}; choose another with --data-dir DIR"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise LaunchError(self._in_use(holder)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def _in_use(self, holder: str) -> str:
        folder = self.path.parent
        alive = holder.isdigit() and _alive(int(holder))
        who = (
            f"by another `voxcache up` (pid {holder})"
            if alive
            else "by a redis-server an earlier `voxcache up` left running"
        )
        return f"data folder {folder} is in use {who}; stop it, or use another folder with --data-dir DIR"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore stop signals while stopping, so a second Ctrl-C cannot leave Redis or its folder behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class Stack:
    """Redis + Embedder + Synthesizer as child processes.

    `data_dir` None (the default, what tests and `make demo` use) is a throwaway Redis;
    a folder keeps Redis's data there across runs. Port 0 picks a free port.
    """

    embedder_port: int = 0
    synthesizer_port: int = 0
    log_level: str = "WARNING"
    data_dir: Path | None = None
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    #: Where start-up steps are reported (`voxcache up` prints them; Stack() is quiet).
    report: Callable[[str], None] = field(default=lambda _: None, repr=False)
    #: A scripts/gen_certs.sh folder: both services serve mTLS with it, the Synthesizer reaches
    #: the Embedder over mTLS; None is plaintext (on 127.0.0.1 only either way).
    tls_dir: Path | None = None
    redis: LocalRedis | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    _lock: DataDirLock | None = None

    @property
    def embedder(self) -> str:
        return f"127.0.0.1:{self.embedder_port}"

    @property
    def synthesizer(self) -> str:
        return f"127.0.0.1:{self.synthesizer_port}"

    @property
    def client_tls(self) -> TLS | None:
        """What a client of this stack presents (the launcher's own health checks included)."""
        if self.tls_dir is None:
            return None
        return TLS(ca=self.tls_dir / "ca.pem", cert=self.tls_dir / "client.pem", key=self.tls_dir / "client.key")

    def _tls_args(self, *, embedder_client: bool) -> list[str]:
        """Server flags for both services; with `embedder_client`, the Synthesizer's client flags too."""
        if self.tls_dir is None:
            return []
        d = self.tls_dir
        flags = ["--tls-cert", f"{d}/server.pem", "--tls-key", f"{d}/server.key", "--tls-client-ca", f"{d}/ca.pem"]
        if embedder_client:
            flags += ["--embedder-tls-ca", f"{d}/ca.pem"]
            flags += ["--embedder-tls-cert", f"{d}/client.pem", "--embedder-tls-key", f"{d}/client.key"]
        return flags

    def _spawn(self, name: str, module: str, *args: str, redis_password: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not launcher_drops(k)}
        env["VOXCACHE_LOG_LEVEL"] = self.log_level
        if redis_password is not None:
            env["VOXCACHE_EMBEDDER_REDIS_PASSWORD"] = redis_password  # the most specific name wins
        # Its own process group: a terminal's Ctrl-C reaches only the launcher, which then stops the
        # services in order (they drain; Redis last) instead of every process dying at once, each
        # printing its own KeyboardInterrupt traceback when caught mid-start.
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, process_group=0
        )
        self.processes.append(process)
        self.names[process.pid] = name
        return process

    def _check_ports(self) -> None:
        """Refuse taken ports before starting anything: a clash is the commonest reason `up` fails."""
        ports = {"--embedder-port": self.embedder_port, "--synthesizer-port": self.synthesizer_port}
        if self.embedder_port and self.embedder_port == self.synthesizer_port:
            raise LaunchError(f"--embedder-port and --synthesizer-port are both {self.embedder_port}; give two ports")
        for flag, port in ports.items():
            if port and port_in_use(port):
                raise LaunchError(
                    f"port {port} is already in use (another `voxcache up`?); stop that program or "
                    f"choose a free one with {flag} PORT"
                )

    def start(self) -> Stack:
        try:
            self._check_ports()
            redis_dir = None
            if self.data_dir is not None:
                self._lock = DataDirLock(self.data_dir).acquire()
                redis_dir = self.data_dir / "redis"
            self.report("starting redis-server")
            fds = (self._lock.fd,) if self._lock is not None and self._lock.fd is not None else ()
            self._start_redis(redis_dir, fds)
            self.embedder_port = self.embedder_port or free_port()
            self.synthesizer_port = self.synthesizer_port or free_port()
            self.report(f"starting the Embedder on {self.embedder}")
            embedder = self._spawn(
                "Embedder", "services.embedder.server",
                "--port", str(self.embedder_port), "--metrics-port", "0", "--redis-url", self.redis.url,
                *self._tls_args(embedder_client=False), redis_password=self.redis.password,
            )  # fmt: skip
            wait_serving(
                self.embedder, EMBEDDER_SERVICE, embedder, self.ready_timeout_s,
                name="Embedder", port_flag="--embedder-port", tls=self.client_tls,
            )  # fmt: skip
            self.report(f"starting the Synthesizer on {self.synthesizer}")
            synthesizer = self._spawn(
                "Synthesizer", "services.synthesizer.server",
                "--port", str(self.synthesizer_port), "--embedder-address", self.embedder,
                *self._tls_args(embedder_client=True),
            )  # fmt: skip
            wait_serving(
                self.synthesizer, SYNTHESIZER_SERVICE, synthesizer, self.ready_timeout_s,
                name="Synthesizer", port_flag="--synthesizer-port", tls=self.client_tls,
            )  # fmt: skip
            self.report("warming up the Synthesizer (its voices, then one short sentence)")
            wait_warm(self.synthesizer, self.ready_timeout_s, self.client_tls)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_redis(self, folder: Path | None, fds: tuple[int, ...]) -> None:
        try:
            # Set before start(): stop() closes it even when start() fails half-way.
            self.redis = LocalRedis(acl=True, data_dir=folder, pass_fds=fds, process_group=0)
            self.redis.start()
        except FileNotFoundError as exc:  # no redis-server, or no deploy/redis files
            raise LaunchError(str(exc)) from None
        except (RuntimeError, TimeoutError, OSError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            where = f"; its log is {folder / 'redis.log'}" if folder is not None else ""
            raise LaunchError(f"redis-server did not start: {lines[-1] if lines else exc!r}{where}") from None

    def exited(self) -> subprocess.Popen[bytes] | None:
        """The first service process that has exited, if any."""
        return next((p for p in self.processes if p.poll() is not None), None)

    def stop(self) -> None:
        with signals_ignored():
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
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `voxcache up` and `python -m services.launcher` (one list, so they cannot drift)."""
    parser.add_argument(
        "--embedder-port", type=int, default=50051, metavar="PORT", help="the Embedder's gRPC port on 127.0.0.1"
    )
    parser.add_argument(
        "--synthesizer-port", type=int, default=50052, metavar="PORT", help="the Synthesizer's gRPC port on 127.0.0.1"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"folder that keeps Redis's data (registered voices, cached conditioning) across restarts "
        f"(default: $XDG_DATA_HOME/voxcache, else ~/.local/share/voxcache; here {default_data_dir()})",
    )
    where.add_argument(
        "--ephemeral",
        action="store_true",
        help="throwaway Redis in a temp folder, removed on exit: nothing survives a restart",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help="serve both services over mTLS with the certificates `scripts/gen_certs.sh DIR` wrote, the "
        "Synthesizer -> Embedder channel included; clients then pass --tls-ca DIR/ca.pem "
        "--tls-cert DIR/client.pem --tls-key DIR/client.key (default: plaintext on 127.0.0.1)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_S,
        metavar="SECONDS",
        help="give up if a service is not ready within this long",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the services' log level",
    )


def _interrupt(*_: object) -> None:
    """Every stop signal stops the stack the same clean way, wherever start-up is."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Start the stack, report it, serve until Ctrl-C/SIGTERM or a service dies; the exit status."""
    data_dir = None if args.ephemeral else (args.data_dir or default_data_dir()).expanduser().resolve()
    on_main = threading.current_thread() is threading.main_thread()
    previous: dict[int, object] = {}
    if on_main:
        # Ctrl-C even where a shell started us with SIGINT ignored (a script's background job);
        # SIGHUP (the terminal closed) too: the services are in their own process groups, so
        # the launcher is what must stop them.
        previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    started = time.monotonic()
    tls_dir = getattr(args, "tls_dir", None)
    stack = Stack(
        args.embedder_port, args.synthesizer_port, args.log_level, data_dir, args.ready_timeout, _say,
        tls_dir=tls_dir.expanduser().resolve() if tls_dir else None,  # the services run in the checkout
    )  # fmt: skip
    try:
        try:
            stack.start()
        except LaunchError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            print("interrupted while starting; everything it started is stopped", file=sys.stderr, flush=True)
            return 130
        try:
            redis = stack.redis
            assert redis is not None
            kept = f"data in {data_dir} (kept across restarts)" if data_dir else "throwaway data (--ephemeral)"
            _say(f"redis-server  127.0.0.1:{redis.port} (ACL user {redis.username}), {kept}")
            secure = f" (mTLS, certificates in {stack.tls_dir})" if stack.tls_dir else ""
            _say(f"Embedder      {stack.embedder}{secure}")
            _say(f"Synthesizer   {stack.synthesizer}{secure}")
            _say(f"voxcache is up (ready in {time.monotonic() - started:.1f} s); Ctrl-C stops it")
            while (dead := stack.exited()) is None:
                time.sleep(0.5)
            name = stack.names.get(dead.pid, "a service")
            print(f"error: the {name} exited with code {dead.returncode}; see its log above", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            with signals_ignored():
                _say("stopping...")
                stack.stop()
                _say("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    from voxcache.cli import HelpFormatter  # the SDK's: defaults shown exactly as `voxcache up --help` shows them

    parser = argparse.ArgumentParser(
        prog="python -m services.launcher", description=__doc__, formatter_class=HelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
