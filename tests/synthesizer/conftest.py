"""Real Kokoro weights behind a real Synthesizer, talking to a real Embedder over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
import pytest_asyncio

from services.embedder.server import RunningEmbedder
from services.embedder.settings import REPO_ROOT
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.settings import SynthesizerSettings


@pytest.fixture(scope="session")
def kokoro() -> KokoroBackend:
    """Loaded once; its bundled-voice table is filled by the first test that needs it."""
    return KokoroBackend.load(REPO_ROOT / "models" / "kokoro", threads=2)


@dataclass
class Services:
    embedder: RunningEmbedder
    synthesizer: synthesizer_server.RunningSynthesizer

    @property
    def embedder_address(self) -> str:
        return f"127.0.0.1:{self.embedder.port}"

    @property
    def synthesizer_address(self) -> str:
        return f"127.0.0.1:{self.synthesizer.port}"


@pytest_asyncio.fixture
async def services(embedder_service: RunningEmbedder, kokoro: KokoroBackend) -> AsyncIterator[Services]:
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder_service.port}")
    running = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    await running.warm_up
    yield Services(embedder_service, running)
    await running.stop()
