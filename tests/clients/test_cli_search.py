"""`voxcache search` and the SDK's search_voices against a live Embedder (the CLI runs in a
worker thread: the server shares this loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.embedder.server import RunningEmbedder
from voxcache import AsyncEmbedderClient, cli


async def test_search_by_clip_and_by_voice_from_the_command_line_and_the_sdk(
    embedder_service: RunningEmbedder,
    speech: dict[str, Any],
    other_speech: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    address = f"127.0.0.1:{embedder_service.port}"

    async def voxcache(*args: str) -> int:
        return await asyncio.to_thread(cli.main, ["--embedder", address, "-q", *args])

    ref = tmp_path / "ref.wav"
    ref.write_bytes(speech["wav"])
    assert await voxcache("search", "--voice", str(ref)) == 0
    assert "no voices to compare with (0 searched)" in capsys.readouterr().out

    async with AsyncEmbedderClient(address, timeout=60) as client:
        await client.register_voice("host", speech["wav"])
        await client.register_voice("guest", other_speech)
        by_vector = await client.search_voices(vector=(await client.embed(other_speech)).speaker, k=1)
        assert [hit.voice.voice_id for hit in by_vector.hits] == ["guest"] and by_vector.searched == 2
        assert by_vector.hits[0].cosine == pytest.approx(1.0, abs=1e-3) and by_vector.encoder == "ecapa"
        with pytest.raises(ValueError, match="exactly one"):
            await client.search_voices(speech["wav"], voice_id="host")

    assert await voxcache("search", "--voice", str(ref), "-k", "1") == 0
    output = capsys.readouterr().out
    assert "  1  host " in output and "guest" not in output and "nearest 1 of 2 voices (ecapa)" in output

    assert await voxcache("search", "--voice-id", "host") == 0
    output = capsys.readouterr().out
    assert "guest" in output and " host " not in output and "nearest 1 of 1 voices" in output

    assert await voxcache("search", "--voice-id", "host", "-k", "101") == 1
    assert "-k" in capsys.readouterr().err
