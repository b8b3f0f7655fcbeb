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
from voxcache.errors import VoxcacheError
from voxcache.tls import TLS
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 10.0
#: The Embedder's default --max-audio-mb (16 MiB). A larger clip is refused before it is sent:
#: past the server's gRPC message cap it would end the call (a whole Preload stream, with the
#: summary of every clip before it) with a message that names no clip.
DEFAULT_MAX_AUDIO_BYTES = 16 * 1024 * 1024
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
class VoiceMatch:
    """One voice SearchVoices found: the voice and the cosine of its vector to the query's."""

    voice: Voice
    cosine: float


@dataclass(frozen=True)
class VoiceSearch:
    """The nearest voices, nearest first; `searched`: how many voices were compared."""

    hits: list[VoiceMatch]
    encoder: str
    searched: int


@dataclass(frozen=True)
class PreloadSummary:
    """One Preload call. `received` counts every clip given, including those refused before
    sending (over `max_audio_bytes`), so received == computed + cached + failed; `failures`
    are dicts of index (position among the clips given), label, code (a status code name,
    e.g. "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED") and message, in index order."""

    received: int
    computed: int
    cached: int
    failed: int
    failures: list[dict[str, Any]]
    total_ms: float


def read_audio(audio: AudioInput) -> bytes:
    return audio if isinstance(audio, bytes) else Path(audio).read_bytes()


def _too_large(name: str, size: int, limit: int) -> VoxcacheError:
    """The error of a clip refused before sending: RESOURCE_EXHAUSTED on field "audio", the clip named."""
    return VoxcacheError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"{name} is {size / 2**20:.1f} MiB ({size} bytes), over this client's max_audio_bytes ({limit}); "
        "not sent (the Embedder's --max-audio-mb is 16 unless configured otherwise)",
        field="audio",
    )


def _read_clip(audio: AudioInput, limit: int, name: str = "") -> bytes:
    """The clip's bytes, or `_too_large` when over `limit` (a file is measured before it is read)."""
    name = name or (f"clip {os.fspath(audio)}" if not isinstance(audio, bytes) else "the audio")
    if not isinstance(audio, bytes) and (size := os.stat(audio).st_size) > limit:
        raise _too_large(name, size, limit)
    data = read_audio(audio)
    if len(data) > limit:
        raise _too_large(name, len(data), limit)
    return data


def _cache_options(ttl_seconds: int, bypass: bool, pin: bool) -> pb.CacheOptions:
    return pb.CacheOptions(ttl_seconds=ttl_seconds, bypass=bypass, pin=pin)


def _embed_request(
    audio: AudioInput | None, voice_id: str | None, encoder: str, options: pb.CacheOptions, limit: int
) -> pb.EmbedRequest:
    if (audio is None) == (voice_id is None):
        raise ValueError("pass exactly one of audio or voice_id")
    if voice_id is not None:
        return pb.EmbedRequest(voice_id=voice_id, encoder=encoder, cache=options)
    return pb.EmbedRequest(audio=_read_clip(audio, limit), encoder=encoder, cache=options)  # type: ignore[arg-type]


def _register_request(
    voice_id: str, audio: AudioInput, encoder: str, overwrite: bool, limit: int
) -> pb.RegisterVoiceRequest:
    name = f"clip {os.fspath(audio)}" if not isinstance(audio, bytes) else f"the audio of voice {voice_id!r}"
    clip = _read_clip(audio, limit, name)
    return pb.RegisterVoiceRequest(voice_id=voice_id, audio=clip, encoder=encoder, overwrite=overwrite)


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


def _search_request(
    audio: AudioInput | None,
    vector: np.ndarray | None,
    voice_id: str | None,
    k: int,
    encoder: str,
    limit: int,
) -> pb.SearchVoicesRequest:
    """Exactly one query: a clip, a vector (e.g. an `Embedding.speaker`) or a registered voice."""
    if sum(x is not None for x in (audio, vector, voice_id)) != 1:
        raise ValueError("pass exactly one of audio, vector or voice_id")
    if vector is not None:
        return pb.SearchVoicesRequest(vector=tensors.to_proto(np.asarray(vector)), k=k, encoder=encoder)
    if voice_id is not None:
        return pb.SearchVoicesRequest(voice_id=voice_id, k=k, encoder=encoder)
    return pb.SearchVoicesRequest(audio=_read_clip(audio, limit), k=k, encoder=encoder)  # type: ignore[arg-type]


def _from_search(response: pb.SearchVoicesResponse) -> VoiceSearch:
    hits = [VoiceMatch(_voice(hit.voice), hit.cosine) for hit in response.hits]
    return VoiceSearch(hits, response.encoder, response.searched)


class _PreloadStream:
    """The requests of one Preload call, minus the clips refused locally, and how to report both.

    The server numbers the clips it receives; a skipped clip shifts that numbering, so each
    sent request remembers its position among the clips the caller gave.
    """

    def __init__(self, encoder: str, options: pb.CacheOptions, limit: int) -> None:
        self._encoder = encoder
        self._options = options
        self._limit = limit
        self._given = 0
        #: Caller's index of each request sent, in sending order (the server's index into it).
        self._sent: list[int] = []
        self._skipped: list[dict[str, Any]] = []

    def request(self, clip: AudioInput | tuple[str, AudioInput]) -> pb.PreloadRequest | None:
        """The clip's request, or None (recorded as a failure) when it is over the size limit."""
        index, self._given = self._given, self._given + 1
        label, audio = clip if isinstance(clip, tuple) else (str(clip) if not isinstance(clip, bytes) else "", clip)
        try:
            data = _read_clip(audio, self._limit, f"clip {label}" if label else f"clip #{index}")
        except VoxcacheError as error:
            code = error.code.name
            self._skipped.append({"index": index, "label": label, "code": code, "message": error.message})
            return None
        self._sent.append(index)
        return pb.PreloadRequest(audio=data, label=label, encoder=self._encoder, cache=self._options)

    def summary(self, response: pb.PreloadResponse) -> PreloadSummary:
        failures = [
            {"index": self._sent[f.index], "label": f.label, "code": f.code, "message": f.message}
            for f in response.failures
        ]
        failures = sorted(failures + self._skipped, key=lambda f: f["index"])
        skipped = len(self._skipped)
        return PreloadSummary(
            response.received + skipped,
            response.computed,
            response.cached,
            response.failed + skipped,
            failures,
            response.total_ms,
        )


def _stats(response: pb.GetStatsResponse) -> dict[str, Any]:
    """Plain Python numbers (MessageToDict would turn 64-bit counters into strings)."""
    stats: dict[str, Any] = {f.name: getattr(response, f.name) for f in response.DESCRIPTOR.fields}
    latency = response.extraction_latency
    stats["extraction_latency"] = {f.name: getattr(latency, f.name) for f in latency.DESCRIPTOR.fields}
    stats["encoder_runtimes"] = {
        encoder: {"runtime": r.runtime, "forced": r.forced, "warmup_ms": dict(r.warmup_ms), "skipped": dict(r.skipped)}
        for encoder, r in response.encoder_runtimes.items()
    }
    stats["speaker_similarity"] = {
        backend: {"p50": f.p50, "samples": f.samples, "scored": f.scored, "failed": f.failed}
        for backend, f in response.speaker_similarity.items()
    }
    return stats


def _preload_requests(
    clips: Iterable[AudioInput | tuple[str, AudioInput]], stream: _PreloadStream
) -> Iterator[pb.PreloadRequest]:
    for clip in clips:
        if (request := stream.request(clip)) is not None:
            yield request


class EmbedderClient(ChannelClient):
    """Blocking client. Use as a context manager, or call close()."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        channel: grpc.Channel | None = None,
        tls: TLS | None = None,
        token: str | None = None,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    ) -> None:
        """`max_audio_bytes`: larger clips raise VoxcacheError (RESOURCE_EXHAUSTED) before sending;
        set it to the server's --max-audio-mb when that is not the default 16. `tls`: a
        `voxcache.TLS` for a TLS (or, with a client certificate, mTLS) server; `token`: sent as
        `authorization: Bearer <token>` on every call."""
        super().__init__(target, timeout, channel, tls, token)
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)
        self.max_audio_bytes = max_audio_bytes

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
        options = _cache_options(ttl_seconds, bypass, pin)
        request = _embed_request(audio, voice_id, encoder, options, self.max_audio_bytes)
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
        request = _register_request(voice_id, audio, encoder, overwrite, self.max_audio_bytes)
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
        """Stream many clips (bytes, paths, or (label, clip) pairs); the deadline covers the whole stream.

        A clip over `max_audio_bytes` is not sent: it is a RESOURCE_EXHAUSTED failure in the summary.
        """
        stream = _PreloadStream(encoder, _cache_options(ttl_seconds, False, pin), self.max_audio_bytes)
        return stream.summary(self._call(self._stub.Preload, _preload_requests(clips, stream), timeout))

    def search_voices(
        self,
        audio: AudioInput | None = None,
        *,
        vector: np.ndarray | None = None,
        voice_id: str | None = None,
        k: int = 0,
        encoder: str = "",
        timeout: float | None = None,
    ) -> VoiceSearch:
        """The k (1-100; 0: 10) registered voices nearest to a clip, a vector or a voice (itself left out)."""
        request = _search_request(audio, vector, voice_id, k, encoder, self.max_audio_bytes)
        return _from_search(self._call(self._stub.SearchVoices, request, timeout))

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
        tls: TLS | None = None,
        token: str | None = None,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    ) -> None:
        super().__init__(target, timeout, channel, tls, token)
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)
        self.max_audio_bytes = max_audio_bytes

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
        options = _cache_options(ttl_seconds, bypass, pin)
        request = _embed_request(audio, voice_id, encoder, options, self.max_audio_bytes)
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
        request = _register_request(voice_id, audio, encoder, overwrite, self.max_audio_bytes)
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
        stream = _PreloadStream(encoder, _cache_options(ttl_seconds, False, pin), self.max_audio_bytes)

        async def requests() -> AsyncIterator[pb.PreloadRequest]:
            if isinstance(clips, AsyncIterable):
                async for clip in clips:
                    if (request := stream.request(clip)) is not None:
                        yield request
            else:
                for request in _preload_requests(clips, stream):
                    yield request

        return stream.summary(await self._call(self._stub.Preload, requests(), timeout))

    async def search_voices(
        self,
        audio: AudioInput | None = None,
        *,
        vector: np.ndarray | None = None,
        voice_id: str | None = None,
        k: int = 0,
        encoder: str = "",
        timeout: float | None = None,
    ) -> VoiceSearch:
        request = _search_request(audio, vector, voice_id, k, encoder, self.max_audio_bytes)
        return _from_search(await self._call(self._stub.SearchVoices, request, timeout))

    async def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        return _stats(await self._call(self._stub.GetStats, pb.GetStatsRequest(), timeout))
