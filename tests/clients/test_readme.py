"""The README's CLI quick start and its Python snippet, run as written, in that order.

A newcomer follows the README word for word: first the `voxcache` commands under "Run the
stack yourself", then the Python snippet under "Clients". Both are read out of README.md,
run against live services in a fresh folder (the only change: the default addresses become
the test's), and every `print(...)  # output` comment in the snippet must be what it printed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

from services.common.paths import REPO_ROOT
from tests.conftest import Services

README = (REPO_ROOT / "README.md").read_text()
DEFAULT_EMBEDDER, DEFAULT_SYNTHESIZER = "127.0.0.1:50051", "127.0.0.1:50052"


def fenced_block_after(marker: str, language: str) -> str:
    rest = README[README.index(marker) :]
    return rest.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def quick_start_commands() -> list[list[str]]:
    block = fenced_block_after("Run the stack yourself", "bash")
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == ".venv/bin/voxcache":
            commands.append(words[1:])
    return commands


def python_snippet() -> str:
    return fenced_block_after("**Python** (", "python")


def expected_prints(snippet: str) -> list[str]:
    """Each `print(...)  # text` line's text; `a / b` when a loop prints once per item."""
    expected = []
    for line in snippet.splitlines():
        found = re.search(r"\bprint\(.*\)\s+#\s*(.+)$", line)
        if found:
            expected.extend(part.strip() for part in found.group(1).split(" / "))
    return expected


async def run(command: list[str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    return process.returncode or 0, output.decode()


async def test_cli_quick_start_then_python_snippet_as_written(services: Services, tmp_path: Path) -> None:
    (tmp_path / "samples").symlink_to(REPO_ROOT / "samples")
    (tmp_path / "clips.txt").write_text("samples/reference_en.wav\n")
    voxcache = str(Path(sys.executable).with_name("voxcache"))
    addresses = ["--embedder", services.embedder_address, "--synthesizer", services.synthesizer_address]

    commands = quick_start_commands()
    assert [c[:1] for c in commands][:3] == [["say"], ["voices"], ["say"]], commands
    for command in commands:
        code, output = await run([voxcache, *addresses, *command], tmp_path)
        assert code == 0, (command, output)
    assert (tmp_path / "hello.wav").stat().st_size > 10_000 and (tmp_path / "again.wav").stat().st_size > 10_000

    snippet = python_snippet()
    assert DEFAULT_EMBEDDER in snippet and DEFAULT_SYNTHESIZER in snippet
    live = snippet.replace(DEFAULT_EMBEDDER, services.embedder_address).replace(
        DEFAULT_SYNTHESIZER, services.synthesizer_address
    )
    (tmp_path / "hello.wav").unlink()  # the snippet writes it again
    code, output = await run([sys.executable, "-c", live], tmp_path)
    assert code == 0, output
    printed = [line.strip() for line in output.splitlines() if line.strip()]
    assert printed == expected_prints(snippet)
    assert (tmp_path / "hello.wav").read_bytes()[:4] == b"RIFF"
