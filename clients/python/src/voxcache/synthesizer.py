"""Typed sync and async clients for voxcache.v1.Synthesizer.

The channel, deadlines and error mapping come from voxcache.channel (shared with
the Embedder client). AudioInput and Embedding come from voxcache.embedder: a voice
is given as reference audio or as conditioning the Embedder returned, the very types
the Embedder client takes and gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from voxcache import tensors
from voxcache.channel import AsyncChannelClient, ChannelClient, rpc_errors
from voxcache.embedder import AudioInput, Embedding, read_audio
from voxcache.tls import TLS
from voxcache.v1 import synthesizer_pb2 as pb
from voxcache.v1 import synthesizer_pb2_grpc, tensor_pb2

DEFAULT_SYNTH_TARGET = "127.0.0.1:50052"
#: Synthesis of a paragraph on CPU takes seconds; the first call after start-up longer.
DEFAULT_SYNTH_TIMEOUT_S = 120.0
_FORMATS = {"wav": pb.AUDIO_FORMAT_WAV, "pcm16": pb.AUDIO_FORMAT_PCM16}


@dataclass(frozen=True)
class Speech:
    """A synthesized utterance and how it was made."""

    audio: bytes
    sample_rate: int
    #: "wav" or "pcm16"
    format: str
    duration_s: float
    backend: str
    #: The voice actually spoken (kokoro: the nearest bundled voice).
    backend_voice: str
    #: Cosine between the reference and backend_voice (kokoro), else 0.
    similarity: float
    conditioning_cache_hit: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: Clone quality: cosine (ECAPA) between this audio and the reference; None when not scored.
    speaker_similarity: float | None = None
    #: Why a requested score is missing ("" when scored or not asked for).
    speaker_similarity_error: str = ""

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_bytes(self.audio)
        return target


@dataclass(frozen=True)
class SpeechChunk:
    """One streamed sentence: 16-bit PCM. The last chunk carries timings and, for WAV, the header."""

    audio: bytes
    sample_rate: int
    index: int
    sentence: str
    last: bool
    wav_header: bytes = b""
    backend_voice: str = ""
    similarity: float = 0.0
    conditioning_cache_hit: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: On the last chunk, when scored: the whole stream's clone quality (see Speech).
    speaker_similarity: float | None = None
    speaker_similarity_error: str = ""


def _request(
    text: str,
    voice: AudioInput | None,
    voice_id: str | None,
    conditioning: Embedding | Mapping[str, np.ndarray] | None,
    language: str,
    speed: float,
    format: str,
    backend: str,
    options: Mapping[str, str] | None,
    score: bool = False,
) -> pb.SynthesizeRequest:
    if sum(x is not None for x in (voice, voice_id, conditioning)) != 1:
        raise ValueError("pass exactly one of voice (reference audio), voice_id or conditioning")
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}")
    request = pb.SynthesizeRequest(
        text=text,
        language=language,
        speed=speed,
        format=_FORMATS[format],
        backend=backend,
        backend_options=dict(options or {}),
        score_similarity=score,
    )
    if voice is not None:
        request.reference_audio = read_audio(voice)
    elif voice_id is not None:
        request.voice_id = voice_id
    else:
        arrays = conditioning.tensors if isinstance(conditioning, Embedding) else conditioning
        message = tensor_pb2.Conditioning(encoder=conditioning.encoder if isinstance(conditioning, Embedding) else "")
        tensors.map_to_proto(arrays or {}, message.tensors)
        request.conditioning.CopyFrom(message)
    return request


def _timings(message: pb.SynthesisTimings) -> dict[str, float]:
    return {f.name.removesuffix("_ms"): value for f, value in message.ListFields()}


def _speech(response: pb.SynthesizeResponse) -> Speech:
    voice = response.selection
    return Speech(
        audio=response.audio,
        sample_rate=response.sample_rate,
        format="pcm16" if response.format == pb.AUDIO_FORMAT_PCM16 else "wav",
        duration_s=response.duration_s,
        backend=voice.backend,
        backend_voice=voice.backend_voice,
        similarity=voice.similarity,
        conditioning_cache_hit=voice.conditioning_cache_hit,
        timings_ms=_timings(response.timings),
        speaker_similarity=response.speaker_similarity if response.HasField("speaker_similarity") else None,
        speaker_similarity_error=response.speaker_similarity_error,
    )


def _chunk(message: pb.SynthesizeStreamResponse) -> SpeechChunk:
    return SpeechChunk(
        audio=message.audio,
        sample_rate=message.sample_rate,
        index=message.sentence_index,
        sentence=message.sentence,
        last=message.last,
        wav_header=message.wav_header,
        backend_voice=message.selection.backend_voice,
        similarity=message.selection.similarity,
        conditioning_cache_hit=message.selection.conditioning_cache_hit,
        timings_ms=_timings(message.timings),
        speaker_similarity=message.speaker_similarity if message.HasField("speaker_similarity") else None,
        speaker_similarity_error=message.speaker_similarity_error,
    )


class SynthesizerClient(ChannelClient):
    """Blocking client for the Synthesizer."""

    def __init__(
        self,
        target: str = DEFAULT_SYNTH_TARGET,
        *,
        timeout: float = DEFAULT_SYNTH_TIMEOUT_S,
        channel: grpc.Channel | None = None,
        tls: TLS | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(target, timeout, channel, tls, token)
        self._stub = synthesizer_pb2_grpc.SynthesizerStub(self._channel)

    def say(
        self,
        text: str,
        *,
        voice: AudioInput | None = None,
        voice_id: str | None = None,
        conditioning: Embedding | Mapping[str, np.ndarray] | None = None,
        language: str = "",
        speed: float = 0.0,
        format: str = "wav",
        backend: str = "",
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        score: bool = False,
    ) -> Speech:
        request = _request(text, voice, voice_id, conditioning, language, speed, format, backend, options, score)
        return _speech(self._call(self._stub.Synthesize, request, timeout))

    def stream(
        self,
        text: str,
        *,
        voice: AudioInput | None = None,
        voice_id: str | None = None,
        conditioning: Embedding | Mapping[str, np.ndarray] | None = None,
        language: str = "",
        speed: float = 0.0,
        format: str = "wav",
        backend: str = "",
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        score: bool = False,
    ) -> Iterator[SpeechChunk]:
        """Sentences as they are ready; same arguments as say()."""
        request = _request(text, voice, voice_id, conditioning, language, speed, format, backend, options, score)
        with rpc_errors():
            for message in self._stub.SynthesizeStream(request, **self._call_options(timeout)):
                yield _chunk(message)


class AsyncSynthesizerClient(AsyncChannelClient):
    """asyncio client with the same methods as SynthesizerClient."""

    def __init__(
        self,
        target: str = DEFAULT_SYNTH_TARGET,
        *,
        timeout: float = DEFAULT_SYNTH_TIMEOUT_S,
        channel: grpc.aio.Channel | None = None,
        tls: TLS | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(target, timeout, channel, tls, token)
        self._stub = synthesizer_pb2_grpc.SynthesizerStub(self._channel)

    async def say(
        self,
        text: str,
        *,
        voice: AudioInput | None = None,
        voice_id: str | None = None,
        conditioning: Embedding | Mapping[str, np.ndarray] | None = None,
        language: str = "",
        speed: float = 0.0,
        format: str = "wav",
        backend: str = "",
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        score: bool = False,
    ) -> Speech:
        request = _request(text, voice, voice_id, conditioning, language, speed, format, backend, options, score)
        return _speech(await self._call(self._stub.Synthesize, request, timeout))

    async def stream(
        self,
        text: str,
        *,
        voice: AudioInput | None = None,
        voice_id: str | None = None,
        conditioning: Embedding | Mapping[str, np.ndarray] | None = None,
        language: str = "",
        speed: float = 0.0,
        format: str = "wav",
        backend: str = "",
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        score: bool = False,
    ) -> AsyncIterator[SpeechChunk]:
        request = _request(text, voice, voice_id, conditioning, language, speed, format, backend, options, score)
        with rpc_errors():
            async for message in self._stub.SynthesizeStream(request, **self._call_options(timeout)):
                yield _chunk(message)
