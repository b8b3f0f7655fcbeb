"""`voxcache up` (services/launcher.py): persistence, cleanup, port clashes and readiness.

The stack tests run `python -m voxcache.cli up` as a real process in its own session,
on free ports, and stop it with SIGINT to the whole process group, as a terminal's
Ctrl-C does. The smaller parts (the Redis data folder, the lock, who owns a port, the
warm-up wait) are tested on their own, against real processes and services.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services import launcher
from services.common.paths import REPO_ROOT, SAMPLES_DIR
from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.launcher import DataDirLock, LaunchError, Stack, default_data_dir, listens_on, wait_serving, wait_warm
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.settings import SynthesizerSettings
from voxcache import cli

SAMPLE = SAMPLES_DIR / "reference_en.wav"
START_S = 300.0  # a cold start on a busy 2-core machine: torch, ECAPA, Kokoro, the warm-up


# -- the Redis data folder ---------------------------------------------------------------
def test_redis_with_a_data_folder_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    first = LocalRedis(data_dir=folder).start()
    try:
        redis.Redis(port=first.port).set("voice", b"kept")
    finally:
        first.close()
    assert (folder / "appendonlydir").is_dir()  # close() keeps a data folder
    second = LocalRedis(data_dir=folder).start()
    try:
        assert redis.Redis(port=second.port).get("voice") == b"kept"
    finally:
        second.close()


def test_redis_without_a_data_folder_removes_its_temp_folder(tmp_path: Path) -> None:
    throwaway = LocalRedis().start()
    folder = throwaway.dir
    assert folder.is_dir() and folder.name.startswith("voxcache-redis-")
    throwaway.close()
    assert not folder.exists()


def test_default_data_folder_follows_xdg(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/data/u", "HOME": "/home/u"}) == Path("/data/u/voxcache")
    assert default_data_dir({"HOME": "/home/u"}) == Path("/home/u/.local/share/voxcache")
    # The XDG spec: a relative XDG_DATA_HOME is invalid and ignored.
    assert default_data_dir({"XDG_DATA_HOME": "rel", "HOME": "/home/u"}) == Path("/home/u/.local/share/voxcache")


def test_one_stack_per_data_folder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path).acquire()
    try:
        with pytest.raises(LaunchError, match=r"in use by another `voxcache up` \(pid \d+\).*--data-dir"):
            DataDirLock(tmp_path).acquire()
    finally:
        first.release()
    DataDirLock(tmp_path).acquire().release()  # free again once released


# -- ports -------------------------------------------------------------------------------
@pytest.fixture
def impostor() -> Iterator[int]:
    """Another program on a port, answering the gRPC health check SERVING for the Embedder's name."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set(launcher.EMBEDDER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    servicer.set(launcher.SYNTHESIZER_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


def test_taken_ports_are_refused_before_anything_starts(impostor: int) -> None:
    with pytest.raises(LaunchError, match=rf"port {impostor} is already in use.*--embedder-port PORT"):
        Stack(embedder_port=impostor, synthesizer_port=free_port()).start()
    with pytest.raises(LaunchError, match=rf"port {impostor} is already in use.*--synthesizer-port PORT"):
        Stack(embedder_port=free_port(), synthesizer_port=impostor).start()
    with pytest.raises(LaunchError, match="both 50099"):
        Stack(embedder_port=50099, synthesizer_port=50099).start()


def test_a_health_answer_from_another_process_is_not_our_service(impostor: int) -> None:
    """The reported failure: the Embedder crashed on bind, another program answered SERVING."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert listens_on(child.pid, impostor) is False
        assert listens_on(os.getpid(), impostor) is True  # the impostor runs in this test process
        with pytest.raises(LaunchError, match=rf"port {impostor} answers, but not the Embedder this launch started"):
            wait_serving(f"127.0.0.1:{impostor}", launcher.EMBEDDER_SERVICE, child, 20, name="Embedder")
    finally:
        child.kill()
        child.wait()


def test_a_service_that_dies_on_a_taken_port_is_reported_as_a_clash() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
        dead.wait()
        with pytest.raises(LaunchError, match=rf"could not listen: port {port} is taken.*--embedder-port PORT"):
            wait_serving(f"127.0.0.1:{port}", "x", dead, 10, name="Embedder", port_flag="--embedder-port")


# -- readiness ---------------------------------------------------------------------------
async def test_wait_warm_returns_only_after_the_synthesizer_warm_up(
    embedder_service: embedder_server.RunningEmbedder, kokoro: KokoroBackend
) -> None:
    """Health says SERVING before the bundled voices are characterised; wait_warm must not."""
    kokoro._voice_vectors = {}  # as after a fresh start: the warm-up has its work to do again
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder_service.port}")
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    try:
        assert not running.warm_up.done()  # serving already, warm-up still running
        await asyncio.to_thread(wait_warm, f"127.0.0.1:{running.port}", 120)
        assert running.warm_up.done() and kokoro._voice_vectors
    finally:
        await running.warm_up
        await running.stop()


# -- the real thing ----------------------------------------------------------------------
class Up:
    """`voxcache up ARGS` in its own session; output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        paths = [str(REPO_ROOT / "clients" / "python" / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
        environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voxcache.cli", "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = START_S) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._reader.join(5)
                pytest.fail(f"no {text!r} from `voxcache up` (exit {self.process.poll()}):\n{self.output}")
            time.sleep(0.1)

    def ctrl_c(self) -> None:
        """SIGINT to the process group: the launcher and every process it started, like a terminal's Ctrl-C."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout_s: float = 120) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


def leftovers(folder: Path, ports: list[str]) -> list[int]:
    """Processes a launch left running: a redis-server working in `folder`, a service on one of `ports`.

    The services and Redis run in their own process groups (so Ctrl-C reaches only the
    launcher), hence the search through /proc rather than by process group.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        on_port = any(argv[i : i + 2] == [b"--port", port.encode()] for port in ports for i in range(len(argv)))
        if cwd.is_relative_to(folder) or on_port:
            found.append(int(entry.name))
    return found


@pytest.fixture
def reap(tmp_path: Path) -> Iterator[list[str]]:
    """Ports used by a test; whatever is still running on them or in tmp_path afterwards is killed."""
    ports: list[str] = []
    yield ports
    for pid in leftovers(tmp_path, ports):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def up_processes() -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        up.kill()


def errors_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_up_on_a_port_another_program_answers_fails_loudly(
    impostor: int, tmp_path: Path, up_processes: list[Up]
) -> None:
    up = Up("--embedder-port", str(impostor), "--synthesizer-port", str(free_port()), "--data-dir", str(tmp_path))
    up_processes.append(up)
    assert up.finish(60) == 1
    errors = errors_of(up.output)
    assert len(errors) == 1, up.output
    assert f"port {impostor} is already in use" in errors[0] and "--embedder-port PORT" in errors[0]
    assert "voxcache is up" not in up.output and "Traceback" not in up.output


def test_registered_voices_survive_a_restart(
    tmp_path: Path, up_processes: list[Up], reap: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    embedder, synthesizer = free_port(), free_port()
    reap += [str(embedder), str(synthesizer)]
    ports = ["--embedder-port", str(embedder), "--synthesizer-port", str(synthesizer), "--data-dir", str(data)]
    first = Up(*ports, "--log-level", "INFO")
    up_processes.append(first)
    first.wait_for("voxcache is up")
    # Ready means warmed up: the Synthesizer characterised its voices before "up" was printed.
    assert first.output.index("bundled voices characterised") < first.output.index("voxcache is up")
    assert f"data in {data} (kept across restarts)" in first.output
    assert cli.main(["--embedder", f"127.0.0.1:{embedder}", "-q", "voices", "register", "keeper", str(SAMPLE)]) == 0
    # The warm-up used a clip of its own: `make demo`'s first Embed of the sample is still a miss.
    assert "conditioning computed" in capsys.readouterr().out
    # Redis and both services run in process groups of their own: a terminal's Ctrl-C reaches only the
    # launcher, which stops the services (they drain) and then Redis, not everything at once.
    children = leftovers(tmp_path, reap)
    assert len(children) == 3 and os.getpgid(first.process.pid) not in {os.getpgid(pid) for pid in children}
    first.ctrl_c()
    assert first.finish() == 0, first.output
    assert "stopped" in first.output and not errors_of(first.output)
    assert leftovers(tmp_path, reap) == []  # services and redis-server stopped too
    redis_log = (data / "redis" / "redis.log").read_text()
    assert "Received SIGTERM" in redis_log and "Received SIGINT" not in redis_log  # stopped by the launcher

    second = Up(*ports, "--log-level", "WARNING")
    up_processes.append(second)
    second.wait_for("voxcache is up")
    listing = subprocess.run(
        [sys.executable, "-m", "voxcache.cli", "--embedder", f"127.0.0.1:{embedder}", "voices", "list"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    ).stdout
    assert "keeper" in listing and "1 voice" in listing
    second.ctrl_c()
    assert second.finish() == 0, second.output
    assert leftovers(tmp_path, reap) == []


def test_ephemeral_leaves_nothing_behind_on_ctrl_c(tmp_path: Path, up_processes: list[Up], reap: list[str]) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    reap += [str(free_port()), str(free_port())]
    ports = ["--embedder-port", reap[0], "--synthesizer-port", reap[1], "--log-level", "WARNING"]

    up = Up(*ports, "--ephemeral", env=env)
    up_processes.append(up)
    up.wait_for("voxcache is up")
    assert "throwaway data (--ephemeral)" in up.output
    assert [p.name for p in temp.glob("voxcache-redis-*")], "Redis should run in a temp folder under TMPDIR"
    up.ctrl_c()
    assert up.finish() == 0, up.output
    assert list(temp.glob("voxcache-redis-*")) == [] and leftovers(tmp_path, reap) == []

    # Ctrl-C while starting: the same clean stop, a distinct exit status.
    early = Up(*ports, "--ephemeral", env=env)
    up_processes.append(early)
    early.wait_for("starting the Embedder")
    early.ctrl_c()
    assert early.finish() == 130, early.output
    assert "interrupted while starting" in early.output and "Traceback" not in early.output
    assert list(temp.glob("voxcache-redis-*")) == [] and leftovers(tmp_path, reap) == []
