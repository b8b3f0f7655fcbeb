"""Proto <-> domain for the Synthesizer: the only module that knows both shapes."""

from __future__ import annotations

from services.common.errors import InvalidInput
from services.synthesizer.core import (
    AudioFormat,
    Chunk,
    StreamEnd,
    Synthesis,
    SynthesisRequest,
    SynthesisTimings,
    VoiceSelection,
)
from services.synthesizer.scoring import CloneScore
from voxcache import tensors
from voxcache.v1 import synthesizer_pb2 as pb

FORMAT_TO_PROTO = {AudioFormat.WAV: pb.AUDIO_FORMAT_WAV, AudioFormat.PCM16: pb.AUDIO_FORMAT_PCM16}


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
        score=request.score_similarity,
    )


def format_from_proto(request: pb.SynthesizeRequest) -> AudioFormat:
    """UNSPECIFIED means WAV; a number this contract does not define is refused, not guessed."""
    if request.format in (pb.AUDIO_FORMAT_UNSPECIFIED, pb.AUDIO_FORMAT_WAV):
        return AudioFormat.WAV
    if request.format == pb.AUDIO_FORMAT_PCM16:
        return AudioFormat.PCM16
    raise InvalidInput(
        f"unknown audio format {request.format}; use AUDIO_FORMAT_WAV or AUDIO_FORMAT_PCM16", field="format"
    )


def selection_to_proto(selection: VoiceSelection) -> pb.VoiceSelection:
    return pb.VoiceSelection(
        backend=selection.backend,
        backend_voice=selection.backend_voice,
        similarity=selection.similarity,
        conditioning_cache_hit=selection.conditioning_cache_hit,
        cache_key=selection.cache_key,
    )


def timings_to_proto(timings: SynthesisTimings) -> pb.SynthesisTimings:
    return pb.SynthesisTimings(embed_ms=timings.embed_ms, synthesis_ms=timings.synthesis_ms, total_ms=timings.total_ms)


def _fill_score(message: pb.SynthesizeResponse | pb.SynthesizeStreamResponse, score: CloneScore | None) -> None:
    """speaker_similarity only when scored (its presence is the signal); the reason when scoring failed."""
    if score is None:
        return
    if score.similarity is not None:
        message.speaker_similarity = score.similarity
    message.speaker_similarity_error = score.error


def synthesis_to_proto(result: Synthesis) -> pb.SynthesizeResponse:
    response = pb.SynthesizeResponse(
        audio=result.audio,
        sample_rate=result.sample_rate,
        format=FORMAT_TO_PROTO[result.format],
        selection=selection_to_proto(result.selection),
        timings=timings_to_proto(result.timings),
        duration_s=result.duration_s,
    )
    _fill_score(response, result.score)
    return response


def stream_event_to_proto(event: Chunk | StreamEnd) -> pb.SynthesizeStreamResponse:
    if isinstance(event, StreamEnd):
        last = pb.SynthesizeStreamResponse(
            sample_rate=event.sample_rate,
            sentence_index=event.sentences,
            last=True,
            timings=timings_to_proto(event.timings),
            wav_header=event.wav_header,
        )
        _fill_score(last, event.score)
        return last
    return pb.SynthesizeStreamResponse(
        audio=event.pcm16,
        sample_rate=event.sample_rate,
        sentence_index=event.index,
        sentence=event.sentence,
        selection=selection_to_proto(event.selection) if event.selection is not None else None,
    )
