from voxcache.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_FORMAT_UNSPECIFIED: _ClassVar[AudioFormat]
    AUDIO_FORMAT_WAV: _ClassVar[AudioFormat]
    AUDIO_FORMAT_PCM16: _ClassVar[AudioFormat]
AUDIO_FORMAT_UNSPECIFIED: AudioFormat
AUDIO_FORMAT_WAV: AudioFormat
AUDIO_FORMAT_PCM16: AudioFormat

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "reference_audio", "voice_id", "conditioning", "language", "speed", "format", "backend", "backend_options", "score_similarity")
    class BackendOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_AUDIO_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    text: str
    reference_audio: bytes
    voice_id: str
    conditioning: _tensor_pb2.Conditioning
    language: str
    speed: float
    format: AudioFormat
    backend: str
    backend_options: _containers.ScalarMap[str, str]
    score_similarity: bool
    def __init__(self, text: _Optional[str] = ..., reference_audio: _Optional[bytes] = ..., voice_id: _Optional[str] = ..., conditioning: _Optional[_Union[_tensor_pb2.Conditioning, _Mapping]] = ..., language: _Optional[str] = ..., speed: _Optional[float] = ..., format: _Optional[_Union[AudioFormat, str]] = ..., backend: _Optional[str] = ..., backend_options: _Optional[_Mapping[str, str]] = ..., score_similarity: _Optional[bool] = ...) -> None: ...

class VoiceSelection(_message.Message):
    __slots__ = ("backend", "backend_voice", "similarity", "conditioning_cache_hit", "cache_key")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_VOICE_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    CONDITIONING_CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    backend: str
    backend_voice: str
    similarity: float
    conditioning_cache_hit: bool
    cache_key: str
    def __init__(self, backend: _Optional[str] = ..., backend_voice: _Optional[str] = ..., similarity: _Optional[float] = ..., conditioning_cache_hit: _Optional[bool] = ..., cache_key: _Optional[str] = ...) -> None: ...

class SynthesisTimings(_message.Message):
    __slots__ = ("embed_ms", "synthesis_ms", "total_ms")
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    SYNTHESIS_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    embed_ms: float
    synthesis_ms: float
    total_ms: float
    def __init__(self, embed_ms: _Optional[float] = ..., synthesis_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SynthesizeResponse(_message.Message):
    __slots__ = ("audio", "sample_rate", "format", "selection", "timings", "duration_s", "speaker_similarity", "speaker_similarity_error")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_SIMILARITY_ERROR_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    sample_rate: int
    format: AudioFormat
    selection: VoiceSelection
    timings: SynthesisTimings
    duration_s: float
    speaker_similarity: float
    speaker_similarity_error: str
    def __init__(self, audio: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., format: _Optional[_Union[AudioFormat, str]] = ..., selection: _Optional[_Union[VoiceSelection, _Mapping]] = ..., timings: _Optional[_Union[SynthesisTimings, _Mapping]] = ..., duration_s: _Optional[float] = ..., speaker_similarity: _Optional[float] = ..., speaker_similarity_error: _Optional[str] = ...) -> None: ...

class SynthesizeStreamResponse(_message.Message):
    __slots__ = ("audio", "sample_rate", "sentence_index", "sentence", "selection", "last", "timings", "wav_header", "speaker_similarity", "speaker_similarity_error")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    WAV_HEADER_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_SIMILARITY_ERROR_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    sample_rate: int
    sentence_index: int
    sentence: str
    selection: VoiceSelection
    last: bool
    timings: SynthesisTimings
    wav_header: bytes
    speaker_similarity: float
    speaker_similarity_error: str
    def __init__(self, audio: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., sentence_index: _Optional[int] = ..., sentence: _Optional[str] = ..., selection: _Optional[_Union[VoiceSelection, _Mapping]] = ..., last: _Optional[bool] = ..., timings: _Optional[_Union[SynthesisTimings, _Mapping]] = ..., wav_header: _Optional[bytes] = ..., speaker_similarity: _Optional[float] = ..., speaker_similarity_error: _Optional[str] = ...) -> None: ...
