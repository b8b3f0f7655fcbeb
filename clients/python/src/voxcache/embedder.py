"""Typed sync and async clients for voxcache.v1.Embedder.

Both classes share request building and response parsing; they differ only in
how the stub is called. The channel, deadlines and error mapping come from
voxcache.channel (shared with the Synthesizer client), and results come back as
numpy arrays, never protobuf.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from voxcache import tensors
from voxcache.channel import AsyncChannelClient, ChannelClient
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 10.0
AudioInput = bytes | str | os.PathLike[str]
_TIERS = {pb.CACHE_TIER_LOCAL: "local", pb.CACHE_TIER_REDIS: "redis", pb.CACHE_TIER_COMPUTED: "computed"}


@dataclass(frozen=True)
class Embedding:
    """Conditioning for one voice, as numpy arrays."""

    tensors: dict[str, np.ndarray]
    encoder: str
    weights_digest: str
    cache_key: str
    cache_hit: bool = False
    #: Which cache tier answered: "local", "redis" or "computed" (the model ran).
    tier: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """Deprecated name of `tier` (kept for one release)."""
        warnings.warn("Embedding.source is deprecated; use Embedding.tier", DeprecationWarning, stacklevel=2)
        return self.tier

    @property
    def speaker(self) -> np.ndarray:
        """The ECAPA speaker vector, float32 (192,), L2-normalised."""
        return self.tensors[tensors.SPEAKER]


@dataclass(frozen=True)
class Voice:
    voice_id: str
    audio_sha256: str
    encoders: list[str]
    duration_s: float
    created_unix_ms: int


@dataclass(frozen=True)
class PreloadSummary:
    received: int
    computed: int
    cached: int
    failed: int
    failures: list[dict[str, Any]]
    total_ms: float


def read_audio(audio: AudioInput) -> bytes:
    return audio if isinstance(audio, bytes) else Path(audio).read_bytes()


def _cache_options(ttl_seconds: int, bypass: bool, pin: bool) -> pb.CacheOptions:
    return pb.CacheOptions(ttl_seconds=ttl_seconds, bypass=bypass, pin=pin)


def _embed_request(
    audio: AudioInput | None, voice_id: str | None, encoder: str, options: pb.CacheOptions
) -> pb.EmbedRequest:
    if (audio is None) == (voice_id is None):
        raise ValueError("pass exactly one of audio or voice_id")
    if voice_id is not None:
        return pb.EmbedRequest(voice_id=voice_id, encoder=encoder, cache=options)
    return pb.EmbedRequest(audio=read_audio(audio), encoder=encoder, cache=options)  # type: ignore[arg-type]


def _embedding(conditioning: Any, cache_hit: bool = False, tier: int = 0, timings: Any = None) -> Embedding:
    return Embedding(
        tensors=tensors.map_from_proto(conditioning.tensors),
        encoder=conditioning.encoder,
        weights_digest=conditioning.weights_digest,
        cache_key=conditioning.cache_key,
        cache_hit=cache_hit,
        tier=_TIERS.get(tier, ""),
        timings_ms={f.name.removesuffix("_ms"): v for f, v in timings.ListFields()} if timings else {},
    )


def _from_embed(response: pb.EmbedResponse) -> Embedding:
    return _embedding(response.conditioning, response.cache_hit, response.tier, response.timings)


def _voice(message: pb.Voice) -> Voice:
    return Voice(
        message.voice_id, message.audio_sha256, list(message.encoders), message.duration_s, message.created_unix_ms
    )


def _summary(response: pb.PreloadResponse) -> PreloadSummary:
    failures = [{"index": f.index, "label": f.label, "code": f.code, "message": f.message} for f in response.failures]
    return PreloadSummary(
        response.received, response.computed, response.cached, response.failed, failures, response.total_ms
    )


def _stats(response: pb.GetStatsResponse) -> dict[str, Any]:
    """Plain Python numbers (MessageToDict would turn 64-bit counters into strings)."""
    stats: dict[str, Any] = {f.name: getattr(response, f.name) for f in response.DESCRIPTOR.fields}
    latency = response.extraction_latency
    stats["extraction_latency"] = {f.name: getattr(latency, f.name) for f in latency.DESCRIPTOR.fields}
    return stats


def _preload_requests(
    clips: Iterable[AudioInput | tuple[str, AudioInput]], encoder: str, options: pb.CacheOptions
) -> Iterator[pb.PreloadRequest]:
    for clip in clips:
        label, audio = clip if isinstance(clip, tuple) else (str(clip) if not isinstance(clip, bytes) else "", clip)
        yield pb.PreloadRequest(audio=read_audio(audio), label=label, encoder=encoder, cache=options)


class EmbedderClient(ChannelClient):
    """Blocking client. Use as a context manager, or call close()."""

    def __init__(
        self, target: str = DEFAULT_TARGET, *, timeout: float = DEFAULT_TIMEOUT_S, channel: grpc.Channel | None = None
    ) -> None:
        super().__init__(target, timeout, channel)
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)

    def embed(
        self,
        audio: AudioInput | None = None,
        *,
        voice_id: str | None = None,
        encoder: str = "",
        ttl_seconds: int = 0,
        bypass: bool = False,
        pin: bool = False,
        timeout: float | None = None,
    ) -> Embedding:
        request = _embed_request(audio, voice_id, encoder, _cache_options(ttl_seconds, bypass, pin))
        return _from_embed(self._call(self._stub.Embed, request, timeout))

    def register_voice(
        self,
        voice_id: str,
        audio: AudioInput,
        *,
        encoder: str = "",
        overwrite: bool = False,
        timeout: float | None = None,
    ) -> tuple[Voice, Embedding]:
        request = pb.RegisterVoiceRequest(
            voice_id=voice_id, audio=read_audio(audio), encoder=encoder, overwrite=overwrite
        )
        response = self._call(self._stub.RegisterVoice, request, timeout)
        return _voice(response.voice), _embedding(response.conditioning, response.cache_hit)

    def delete_voice(self, voice_id: str, *, timeout: float | None = None) -> Voice:
        return _voice(self._call(self._stub.DeleteVoice, pb.DeleteVoiceRequest(voice_id=voice_id), timeout).voice)

    def list_voices(self, *, timeout: float | None = None) -> list[Voice]:
        return [_voice(v) for v in self._call(self._stub.ListVoices, pb.ListVoicesRequest(), timeout).voices]

    def preload(
        self,
        clips: Iterable[AudioInput | tuple[str, AudioInput]],
        *,
        encoder: str = "",
        ttl_seconds: int = 0,
        pin: bool = False,
        timeout: float | None = None,
    ) -> PreloadSummary:
        """Stream many clips (bytes, paths, or (label, clip) pairs); the deadline covers the whole stream."""
        requests = _preload_requests(clips, encoder, _cache_options(ttl_seconds, False, pin))
        return _summary(self._call(self._stub.Preload, requests, timeout))

    def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        return _stats(self._call(self._stub.GetStats, pb.GetStatsRequest(), timeout))


class AsyncEmbedderClient(AsyncChannelClient):
    """asyncio client with the same methods as EmbedderClient, as coroutines."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(target, timeout, channel)
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)

    async def embed(
        self,
        audio: AudioInput | None = None,
        *,
        voice_id: str | None = None,
        encoder: str = "",
        ttl_seconds: int = 0,
        bypass: bool = False,
        pin: bool = False,
        timeout: float | None = None,
    ) -> Embedding:
        request = _embed_request(audio, voice_id, encoder, _cache_options(ttl_seconds, bypass, pin))
        return _from_embed(await self._call(self._stub.Embed, request, timeout))

    async def register_voice(
        self,
        voice_id: str,
        audio: AudioInput,
        *,
        encoder: str = "",
        overwrite: bool = False,
        timeout: float | None = None,
    ) -> tuple[Voice, Embedding]:
        request = pb.RegisterVoiceRequest(
            voice_id=voice_id, audio=read_audio(audio), encoder=encoder, overwrite=overwrite
        )
        response = await self._call(self._stub.RegisterVoice, request, timeout)
        return _voice(response.voice), _embedding(response.conditioning, response.cache_hit)

    async def delete_voice(self, voice_id: str, *, timeout: float | None = None) -> Voice:
        response = await self._call(self._stub.DeleteVoice, pb.DeleteVoiceRequest(voice_id=voice_id), timeout)
        return _voice(response.voice)

    async def list_voices(self, *, timeout: float | None = None) -> list[Voice]:
        return [_voice(v) for v in (await self._call(self._stub.ListVoices, pb.ListVoicesRequest(), timeout)).voices]

    async def preload(
        self,
        clips: Iterable[AudioInput | tuple[str, AudioInput]] | AsyncIterable[AudioInput | tuple[str, AudioInput]],
        *,
        encoder: str = "",
        ttl_seconds: int = 0,
        pin: bool = False,
        timeout: float | None = None,
    ) -> PreloadSummary:
        options = _cache_options(ttl_seconds, False, pin)

        async def requests() -> AsyncIterator[pb.PreloadRequest]:
            if isinstance(clips, AsyncIterable):
                async for clip in clips:
                    for request in _preload_requests([clip], encoder, options):
                        yield request
            else:
                for request in _preload_requests(clips, encoder, options):
                    yield request

        return _summary(await self._call(self._stub.Preload, requests(), timeout))

    async def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        return _stats(await self._call(self._stub.GetStats, pb.GetStatsRequest(), timeout))
