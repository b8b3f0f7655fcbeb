"""voxcache.v1.Synthesizer over gRPC: proto <-> domain, nothing else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc

from services.common.errors import InvalidInput
from services.common.grpc_server import deadline_of, rpc_errors, rpc_stream_errors
from services.synthesizer.core import Prepared, SynthesisRequest, Synthesizer
from services.synthesizer.wav import wav_header
from voxcache import tensors
from voxcache.v1 import synthesizer_pb2 as pb
from voxcache.v1 import synthesizer_pb2_grpc


def request_from_proto(request: pb.SynthesizeRequest) -> SynthesisRequest:
    voice = request.WhichOneof("voice")
    conditioning = None
    if voice == "conditioning":
        try:
            conditioning = tensors.map_from_proto(request.conditioning.tensors)
        except tensors.TensorFormatError as exc:
            raise InvalidInput(f"malformed conditioning tensor: {exc}", field="conditioning.tensors") from exc
    return SynthesisRequest(
        text=request.text,
        reference_audio=request.reference_audio if voice == "reference_audio" else None,
        voice_id=request.voice_id if voice == "voice_id" else None,
        conditioning=conditioning,
        conditioning_encoder=request.conditioning.encoder if voice == "conditioning" else "",
        language=request.language,
        speed=request.speed,
        backend=request.backend,
        options=dict(request.backend_options),
    )


def voice_selection(prepared: Prepared) -> pb.VoiceSelection:
    return pb.VoiceSelection(
        backend=prepared.backend.name,
        backend_voice=prepared.plan.backend_voice,
        similarity=prepared.plan.similarity,
        conditioning_cache_hit=prepared.cache_hit,
        cache_key=prepared.cache_key,
    )


def timings(prepared: Prepared) -> pb.SynthesisTimings:
    total_ms = (time.perf_counter() - prepared.started) * 1000
    return pb.SynthesisTimings(
        embed_ms=prepared.embed_ms, synthesis_ms=max(0.0, total_ms - prepared.embed_ms), total_ms=total_ms
    )


class SynthesizerServicer(synthesizer_pb2_grpc.SynthesizerServicer):
    def __init__(self, core: Synthesizer) -> None:
        self.core = core

    @rpc_errors
    async def Synthesize(
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SynthesizeResponse:
        deadline = deadline_of(context)
        prepared = await self.core.prepare(request_from_proto(request), deadline)
        pcm = b"".join([chunk.pcm16 async for chunk in self.core.render(prepared, deadline)])
        rate = prepared.backend.sample_rate
        wav = request.format != pb.AUDIO_FORMAT_PCM16
        return pb.SynthesizeResponse(
            audio=wav_header(len(pcm), rate) + pcm if wav else pcm,
            sample_rate=rate,
            format=pb.AUDIO_FORMAT_WAV if wav else pb.AUDIO_FORMAT_PCM16,
            voice=voice_selection(prepared),
            timings=timings(prepared),
            duration_s=len(pcm) / 2 / rate,
        )

    @rpc_stream_errors
    async def SynthesizeStream(
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SynthesizeStreamResponse]:
        deadline = deadline_of(context)
        prepared = await self.core.prepare(request_from_proto(request), deadline)
        rate, total = prepared.backend.sample_rate, 0
        async for chunk in self.core.render(prepared, deadline):
            total += len(chunk.pcm16)
            yield pb.SynthesizeStreamResponse(
                audio=chunk.pcm16,
                sample_rate=rate,
                sentence_index=chunk.index,
                sentence=chunk.sentence,
                voice=voice_selection(prepared) if chunk.index == 0 else None,
            )
        yield pb.SynthesizeStreamResponse(
            sample_rate=rate,
            sentence_index=len(prepared.segments),
            last=True,
            timings=timings(prepared),
            wav_header=wav_header(total, rate) if request.format != pb.AUDIO_FORMAT_PCM16 else b"",
        )
