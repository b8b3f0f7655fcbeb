from voxcache.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_TIER_UNSPECIFIED: _ClassVar[CacheTier]
    CACHE_TIER_LOCAL: _ClassVar[CacheTier]
    CACHE_TIER_REDIS: _ClassVar[CacheTier]
    CACHE_TIER_COMPUTED: _ClassVar[CacheTier]
CACHE_TIER_UNSPECIFIED: CacheTier
CACHE_TIER_LOCAL: CacheTier
CACHE_TIER_REDIS: CacheTier
CACHE_TIER_COMPUTED: CacheTier

class CacheOptions(_message.Message):
    __slots__ = ("ttl_seconds", "bypass", "pin")
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BYPASS_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    ttl_seconds: int
    bypass: bool
    pin: bool
    def __init__(self, ttl_seconds: _Optional[int] = ..., bypass: _Optional[bool] = ..., pin: _Optional[bool] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("total_ms", "cache_ms", "decode_ms", "extract_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    cache_ms: float
    decode_ms: float
    extract_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., cache_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., extract_ms: _Optional[float] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("audio", "voice_id", "encoder", "cache")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    voice_id: str
    encoder: str
    cache: CacheOptions
    def __init__(self, audio: _Optional[bytes] = ..., voice_id: _Optional[str] = ..., encoder: _Optional[str] = ..., cache: _Optional[_Union[CacheOptions, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("conditioning", "cache_hit", "tier", "timings")
    CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    conditioning: _tensor_pb2.Conditioning
    cache_hit: bool
    tier: CacheTier
    timings: Timings
    def __init__(self, conditioning: _Optional[_Union[_tensor_pb2.Conditioning, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., tier: _Optional[_Union[CacheTier, str]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...

class RegisterVoiceRequest(_message.Message):
    __slots__ = ("voice_id", "audio", "encoder", "overwrite")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    audio: bytes
    encoder: str
    overwrite: bool
    def __init__(self, voice_id: _Optional[str] = ..., audio: _Optional[bytes] = ..., encoder: _Optional[str] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("voice_id", "audio_sha256", "encoders", "duration_s", "created_unix_ms")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    audio_sha256: str
    encoders: _containers.RepeatedScalarFieldContainer[str]
    duration_s: float
    created_unix_ms: int
    def __init__(self, voice_id: _Optional[str] = ..., audio_sha256: _Optional[str] = ..., encoders: _Optional[_Iterable[str]] = ..., duration_s: _Optional[float] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...

class RegisterVoiceResponse(_message.Message):
    __slots__ = ("voice", "conditioning", "cache_hit")
    VOICE_FIELD_NUMBER: _ClassVar[int]
    CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    voice: Voice
    conditioning: _tensor_pb2.Conditioning
    cache_hit: bool
    def __init__(self, voice: _Optional[_Union[Voice, _Mapping]] = ..., conditioning: _Optional[_Union[_tensor_pb2.Conditioning, _Mapping]] = ..., cache_hit: _Optional[bool] = ...) -> None: ...

class DeleteVoiceRequest(_message.Message):
    __slots__ = ("voice_id",)
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    def __init__(self, voice_id: _Optional[str] = ...) -> None: ...

class DeleteVoiceResponse(_message.Message):
    __slots__ = ("voice",)
    VOICE_FIELD_NUMBER: _ClassVar[int]
    voice: Voice
    def __init__(self, voice: _Optional[_Union[Voice, _Mapping]] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices",)
    VOICES_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ...) -> None: ...

class PreloadRequest(_message.Message):
    __slots__ = ("audio", "label", "encoder", "cache")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    label: str
    encoder: str
    cache: CacheOptions
    def __init__(self, audio: _Optional[bytes] = ..., label: _Optional[str] = ..., encoder: _Optional[str] = ..., cache: _Optional[_Union[CacheOptions, _Mapping]] = ...) -> None: ...

class PreloadFailure(_message.Message):
    __slots__ = ("index", "label", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    code: str
    message: str
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PreloadResponse(_message.Message):
    __slots__ = ("received", "computed", "cached", "failed", "failures", "total_ms")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    received: int
    computed: int
    cached: int
    failed: int
    failures: _containers.RepeatedCompositeFieldContainer[PreloadFailure]
    total_ms: float
    def __init__(self, received: _Optional[int] = ..., computed: _Optional[int] = ..., cached: _Optional[int] = ..., failed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[PreloadFailure, _Mapping]]] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SearchVoicesRequest(_message.Message):
    __slots__ = ("audio", "vector", "conditioning", "voice_id", "k", "encoder")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    vector: _tensor_pb2.Tensor
    conditioning: _tensor_pb2.Conditioning
    voice_id: str
    k: int
    encoder: str
    def __init__(self, audio: _Optional[bytes] = ..., vector: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., conditioning: _Optional[_Union[_tensor_pb2.Conditioning, _Mapping]] = ..., voice_id: _Optional[str] = ..., k: _Optional[int] = ..., encoder: _Optional[str] = ...) -> None: ...

class VoiceHit(_message.Message):
    __slots__ = ("voice", "cosine")
    VOICE_FIELD_NUMBER: _ClassVar[int]
    COSINE_FIELD_NUMBER: _ClassVar[int]
    voice: Voice
    cosine: float
    def __init__(self, voice: _Optional[_Union[Voice, _Mapping]] = ..., cosine: _Optional[float] = ...) -> None: ...

class SearchVoicesResponse(_message.Message):
    __slots__ = ("hits", "encoder", "searched")
    HITS_FIELD_NUMBER: _ClassVar[int]
    ENCODER_FIELD_NUMBER: _ClassVar[int]
    SEARCHED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[VoiceHit]
    encoder: str
    searched: int
    def __init__(self, hits: _Optional[_Iterable[_Union[VoiceHit, _Mapping]]] = ..., encoder: _Optional[str] = ..., searched: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LatencyPercentiles(_message.Message):
    __slots__ = ("p50_ms", "p95_ms", "p99_ms", "samples")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    samples: int
    def __init__(self, p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., samples: _Optional[int] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("requests", "hits", "misses", "hit_ratio", "local_hits", "redis_hits", "extractions", "coalesced", "errors", "redis_errors", "corrupt_entries", "redis_available", "local_entries", "local_bytes", "redis_entries", "extraction_latency", "local_capacity_bytes", "write_back_pending", "write_back_bytes", "write_back_written", "write_back_dropped", "dropped_extractions", "encoder_runtimes", "forward_passes", "batched_clips", "reencode_aliases", "alias_hits", "warm_start_entries", "warm_start_bytes", "warm_start_ms", "indexed_voices", "index_bytes", "index_loads", "worker", "workers", "peer_fills", "lease_takeovers", "speaker_similarity", "shed_extractions")
    class EncoderRuntimesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: EncoderRuntime
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[EncoderRuntime, _Mapping]] = ...) -> None: ...
    class SpeakerSimilarityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SpeakerSimilarityStats
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SpeakerSimilarityStats, _Mapping]] = ...) -> None: ...
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    LOCAL_HITS_FIELD_NUMBER: _ClassVar[int]
    REDIS_HITS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTIONS_FIELD_NUMBER: _ClassVar[int]
    COALESCED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REDIS_ERRORS_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REDIS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LOCAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    REDIS_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_LATENCY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    WRITE_BACK_PENDING_FIELD_NUMBER: _ClassVar[int]
    WRITE_BACK_BYTES_FIELD_NUMBER: _ClassVar[int]
    WRITE_BACK_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    WRITE_BACK_DROPPED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_EXTRACTIONS_FIELD_NUMBER: _ClassVar[int]
    ENCODER_RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    BATCHED_CLIPS_FIELD_NUMBER: _ClassVar[int]
    REENCODE_ALIASES_FIELD_NUMBER: _ClassVar[int]
    ALIAS_HITS_FIELD_NUMBER: _ClassVar[int]
    WARM_START_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    WARM_START_BYTES_FIELD_NUMBER: _ClassVar[int]
    WARM_START_MS_FIELD_NUMBER: _ClassVar[int]
    INDEXED_VOICES_FIELD_NUMBER: _ClassVar[int]
    INDEX_BYTES_FIELD_NUMBER: _ClassVar[int]
    INDEX_LOADS_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    PEER_FILLS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TAKEOVERS_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    SHED_EXTRACTIONS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    hits: int
    misses: int
    hit_ratio: float
    local_hits: int
    redis_hits: int
    extractions: int
    coalesced: int
    errors: int
    redis_errors: int
    corrupt_entries: int
    redis_available: bool
    local_entries: int
    local_bytes: int
    redis_entries: int
    extraction_latency: LatencyPercentiles
    local_capacity_bytes: int
    write_back_pending: int
    write_back_bytes: int
    write_back_written: int
    write_back_dropped: int
    dropped_extractions: int
    encoder_runtimes: _containers.MessageMap[str, EncoderRuntime]
    forward_passes: int
    batched_clips: int
    reencode_aliases: int
    alias_hits: int
    warm_start_entries: int
    warm_start_bytes: int
    warm_start_ms: float
    indexed_voices: int
    index_bytes: int
    index_loads: int
    worker: str
    workers: int
    peer_fills: int
    lease_takeovers: int
    speaker_similarity: _containers.MessageMap[str, SpeakerSimilarityStats]
    shed_extractions: int
    def __init__(self, requests: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_ratio: _Optional[float] = ..., local_hits: _Optional[int] = ..., redis_hits: _Optional[int] = ..., extractions: _Optional[int] = ..., coalesced: _Optional[int] = ..., errors: _Optional[int] = ..., redis_errors: _Optional[int] = ..., corrupt_entries: _Optional[int] = ..., redis_available: _Optional[bool] = ..., local_entries: _Optional[int] = ..., local_bytes: _Optional[int] = ..., redis_entries: _Optional[int] = ..., extraction_latency: _Optional[_Union[LatencyPercentiles, _Mapping]] = ..., local_capacity_bytes: _Optional[int] = ..., write_back_pending: _Optional[int] = ..., write_back_bytes: _Optional[int] = ..., write_back_written: _Optional[int] = ..., write_back_dropped: _Optional[int] = ..., dropped_extractions: _Optional[int] = ..., encoder_runtimes: _Optional[_Mapping[str, EncoderRuntime]] = ..., forward_passes: _Optional[int] = ..., batched_clips: _Optional[int] = ..., reencode_aliases: _Optional[int] = ..., alias_hits: _Optional[int] = ..., warm_start_entries: _Optional[int] = ..., warm_start_bytes: _Optional[int] = ..., warm_start_ms: _Optional[float] = ..., indexed_voices: _Optional[int] = ..., index_bytes: _Optional[int] = ..., index_loads: _Optional[int] = ..., worker: _Optional[str] = ..., workers: _Optional[int] = ..., peer_fills: _Optional[int] = ..., lease_takeovers: _Optional[int] = ..., speaker_similarity: _Optional[_Mapping[str, SpeakerSimilarityStats]] = ..., shed_extractions: _Optional[int] = ...) -> None: ...

class SpeakerSimilarityStats(_message.Message):
    __slots__ = ("p50", "samples", "scored", "failed")
    P50_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SCORED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    p50: float
    samples: int
    scored: int
    failed: int
    def __init__(self, p50: _Optional[float] = ..., samples: _Optional[int] = ..., scored: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ScoreSpeakerRequest(_message.Message):
    __slots__ = ("audio", "reference_audio", "voice_id", "reference_conditioning", "backend")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_AUDIO_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_CONDITIONING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    reference_audio: bytes
    voice_id: str
    reference_conditioning: _tensor_pb2.Conditioning
    backend: str
    def __init__(self, audio: _Optional[bytes] = ..., reference_audio: _Optional[bytes] = ..., voice_id: _Optional[str] = ..., reference_conditioning: _Optional[_Union[_tensor_pb2.Conditioning, _Mapping]] = ..., backend: _Optional[str] = ...) -> None: ...

class ScoreSpeakerResponse(_message.Message):
    __slots__ = ("speaker_similarity", "reference_cache_hit", "total_ms", "extract_ms")
    SPEAKER_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    EXTRACT_MS_FIELD_NUMBER: _ClassVar[int]
    speaker_similarity: float
    reference_cache_hit: bool
    total_ms: float
    extract_ms: float
    def __init__(self, speaker_similarity: _Optional[float] = ..., reference_cache_hit: _Optional[bool] = ..., total_ms: _Optional[float] = ..., extract_ms: _Optional[float] = ...) -> None: ...

class EncoderRuntime(_message.Message):
    __slots__ = ("runtime", "forced", "warmup_ms", "skipped")
    class WarmupMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    WARMUP_MS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    runtime: str
    forced: bool
    warmup_ms: _containers.ScalarMap[str, float]
    skipped: _containers.ScalarMap[str, str]
    def __init__(self, runtime: _Optional[str] = ..., forced: _Optional[bool] = ..., warmup_ms: _Optional[_Mapping[str, float]] = ..., skipped: _Optional[_Mapping[str, str]] = ...) -> None: ...
