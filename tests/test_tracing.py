"""OpenTelemetry tracing: one Synthesize is one trace across both services, all real.

Both services run in-process on loopback with the real Redis, ECAPA and Kokoro; spans go to
the SDK's in-memory exporter. The client starts the trace itself (a W3C `traceparent` it
made), so the test knows the trace id and the parent the Synthesizer must continue.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing
from services.common.redis_server import LocalRedis
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.backends.kokoro import KokoroBackend
from services.synthesizer.settings import SynthesizerSettings
from tests.audio_fixtures import SENTENCES, encode, espeak, fit_duration
from tests.conftest import CountingEncoder, make_core
from voxcache.v1 import synthesizer_pb2 as pb
from voxcache.v1 import synthesizer_pb2_grpc

TEXT = "Tracing follows one request. It never records what was said!"
SYNTHESIZE = "/voxcache.v1.Synthesizer/Synthesize"
EMBED = "/voxcache.v1.Embedder/Embed"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, every span kept in memory as soon as it ends."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()  # the default sampler: parent-based, always on for new traces
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable(provider)
    yield memory
    tracing.disable()
    provider.shutdown()


@dataclass
class Traced:
    synthesizer_address: str


@pytest.fixture
async def traced(
    exporter: InMemorySpanExporter, encoder: CountingEncoder, redis_server: LocalRedis, prefix: str, kokoro: Any
) -> AsyncIterator[Traced]:
    """Both services started after tracing was turned on (they take its interceptors at start)."""
    assert isinstance(kokoro, KokoroBackend)
    embedder_settings = replace(
        EmbedderSettings(), port=0, metrics_port=0, redis_url=redis_server.url, cache_prefix=prefix, max_audio_mb=2.0
    )
    embedder = await embedder_server.start(embedder_settings, encoders={"ecapa": encoder})
    settings = replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder.port}")
    synthesizer = await synthesizer_server.start(settings, backends={"kokoro": kokoro})
    await synthesizer.warm_up
    exporter.clear()  # the warm-up's own traces (Kokoro embeds its bundled voices) are not this test's
    try:
        yield Traced(f"127.0.0.1:{synthesizer.port}")
    finally:
        await synthesizer.stop()
        await embedder.stop()


def traceparent() -> tuple[str, int, int]:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return f"00-{trace_id:032x}-{span_id:016x}-01", trace_id, span_id


async def synthesize(address: str, audio: bytes, header: str) -> pb.SynthesizeResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = synthesizer_pb2_grpc.SynthesizerStub(channel)
        request = pb.SynthesizeRequest(text=TEXT, reference_audio=audio)
        return await stub.Synthesize(request, timeout=120, metadata=(("traceparent", header),))


async def spans_until(exporter: InMemorySpanExporter, names: set[str]) -> list[ReadableSpan]:
    """The finished spans once every name in `names` is among them (server spans end as the answer leaves)."""
    for _ in range(200):
        spans = list(exporter.get_finished_spans())
        if names <= {span.name for span in spans}:
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"spans never finished: {names - {s.name for s in exporter.get_finished_spans()}}")


def one(spans: list[ReadableSpan], name: str, kind: SpanKind | None = None) -> ReadableSpan:
    found = [s for s in spans if s.name == name and (kind is None or s.kind == kind)]
    assert len(found) == 1, f"{len(found)} spans named {name} ({kind}): {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.span_id


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


async def test_one_synthesize_is_one_trace_across_both_services(
    traced: Traced, exporter: InMemorySpanExporter, speech: dict[str, Any]
) -> None:
    header, trace_id, client_span_id = traceparent()
    response = await synthesize(traced.synthesizer_address, speech["wav"], header)
    assert response.audio and not response.selection.conditioning_cache_hit  # a miss: decode and extraction ran
    spans = await spans_until(
        exporter, {SYNTHESIZE, EMBED, "voxcache.cache.lookup", "voxcache.extract", "voxcache.synthesize.sentence"}
    )

    # Every span either service made for this call is in the client's trace: none started a trace of its own.
    assert {span.context.trace_id for span in spans} == {trace_id}

    synth_server = one(spans, SYNTHESIZE, SpanKind.SERVER)
    assert parent_of(synth_server) == client_span_id and synth_server.parent.is_remote  # type: ignore[union-attr]
    conditioning = one(spans, "voxcache.conditioning")
    assert child_of(conditioning, synth_server)
    embed_client = one(spans, EMBED, SpanKind.CLIENT)
    assert child_of(embed_client, conditioning)
    embed_server = one(spans, EMBED, SpanKind.SERVER)
    assert child_of(embed_server, embed_client) and embed_server.parent.is_remote  # type: ignore[union-attr]

    lookup = one(spans, "voxcache.cache.lookup")
    assert child_of(lookup, embed_server)
    assert lookup.attributes is not None
    assert lookup.attributes[tracing.TIER] == "computed" and lookup.attributes[tracing.CACHE_HIT] is False
    assert lookup.attributes[tracing.ENCODER] == "ecapa"
    assert lookup.attributes[tracing.AUDIO_BYTES] == len(speech["wav"])
    decode, extract = one(spans, "voxcache.decode"), one(spans, "voxcache.extract")
    assert child_of(decode, lookup) and child_of(extract, lookup)
    assert decode.attributes is not None and decode.attributes[tracing.SAMPLES] > 0
    assert extract.attributes is not None and extract.attributes[tracing.BATCH_SIZE] == 1

    sentences = sorted(
        (s for s in spans if s.name == "voxcache.synthesize.sentence"),
        key=lambda s: s.attributes[tracing.SENTENCE_INDEX],  # type: ignore[index]
    )
    assert [s.attributes[tracing.SENTENCE_INDEX] for s in sentences] == [0, 1]  # type: ignore[index]
    assert all(child_of(s, synth_server) and s.attributes[tracing.SAMPLES] > 0 for s in sentences)  # type: ignore[index]
    assert synth_server.attributes is not None and synth_server.attributes[tracing.SENTENCES] == 2

    # Nothing the caller said or sent is in any attribute: not the text, not a word of it, not the audio.
    values = [str(value) for span in spans for value in (span.attributes or {}).values()]
    words = {word.strip(".!").lower() for word in TEXT.split() if len(word) > 4}
    assert not [v for v in values if TEXT in v or any(word in v.lower() for word in words)]
    assert not [v for v in values if len(v) > 200]  # no blob (audio, tensors) in any attribute


async def test_a_repeated_voice_is_traced_as_a_local_hit(
    traced: Traced, exporter: InMemorySpanExporter, speech: dict[str, Any]
) -> None:
    await synthesize(traced.synthesizer_address, speech["wav"], traceparent()[0])
    header, trace_id, _ = traceparent()
    exporter.clear()
    await synthesize(traced.synthesizer_address, speech["wav"], header)
    spans = await spans_until(exporter, {SYNTHESIZE, "voxcache.cache.lookup"})
    assert {span.context.trace_id for span in spans} == {trace_id}
    lookup = one(spans, "voxcache.cache.lookup")
    assert lookup.attributes is not None and lookup.attributes[tracing.TIER] == "local"
    assert lookup.attributes[tracing.CACHE_HIT] is True
    assert not [s for s in spans if s.name in ("voxcache.decode", "voxcache.extract")]  # a hit extracts nothing


async def test_batched_misses_record_their_pass_size(
    exporter: InMemorySpanExporter, encoder: CountingEncoder, prefix: str
) -> None:
    clips = []
    for sentence, voice in ((SENTENCES[0], "en-us"), (SENTENCES[1], "en-gb")):
        samples, rate = espeak(sentence, voice=voice)
        clips.append(encode(fit_duration(samples, rate, 3.0), rate))
    core = make_core(encoder, None, prefix, batch_window_ms=5000, max_batch=2)
    try:
        await asyncio.gather(*(core.embed(audio=clip) for clip in clips))
    finally:
        await core.close()
    extracts = [s for s in exporter.get_finished_spans() if s.name == "voxcache.extract"]
    assert encoder.batch_sizes == [2]
    assert [s.attributes[tracing.BATCH_SIZE] for s in extracts] == [2, 2]  # type: ignore[index]
    # Two requests, two traces: the batch's collector task does not make one caller the other's parent.
    assert len({s.context.trace_id for s in extracts}) == 2


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    assert tracing.provider_from_environment("voxcache-embedder", {}) is None
    assert tracing.provider_from_environment("voxcache-embedder", {"OTEL_TRACES_EXPORTER": "none"}) is None
    off = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    assert tracing.provider_from_environment("voxcache-embedder", off) is None
    assert not tracing.enabled() and tracing.server_interceptors() == [] and not tracing.client_interceptors()
    with pytest.raises(tracing.TracingConfigError, match="zipkin"):
        tracing.provider_from_environment("voxcache-embedder", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_servers_load_no_tracing_sdk_while_tracing_is_off() -> None:
    """Off costs nothing: importing both servers (and the tracing modules they use) loads
    OpenTelemetry's tracing API, never its tracing SDK (checked in a fresh interpreter: this one
    has it). Other parts of the SDK may be loaded by libraries (redis-py's metrics)."""
    check = (
        "import sys, services.embedder.server, services.synthesizer.server, services.common.tracing_interceptor; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk.trace')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, check=True)
    assert loaded.stdout.strip() == "[]"


def test_the_service_name_defaults_to_the_service_and_otel_service_name_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    env = {"OTEL_TRACES_EXPORTER": "console"}
    provider = tracing.provider_from_environment("voxcache-embedder", env)
    assert provider is not None and provider.resource.attributes["service.name"] == "voxcache-embedder"
    provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "embedder-eu-1")  # the SDK reads the resource from os.environ
    provider = tracing.provider_from_environment("voxcache-embedder", env)
    assert provider is not None and provider.resource.attributes["service.name"] == "embedder-eu-1"
    provider.shutdown()


async def test_a_refused_call_records_its_status_code(traced: Traced, exporter: InMemorySpanExporter) -> None:
    header, trace_id, _ = traceparent()
    async with grpc.aio.insecure_channel(traced.synthesizer_address) as channel:
        stub = synthesizer_pb2_grpc.SynthesizerStub(channel)
        request = pb.SynthesizeRequest(text=TEXT, voice_id="nobody", backend="no-such-backend")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Synthesize(request, timeout=30, metadata=(("traceparent", header),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    server = one(await spans_until(exporter, {SYNTHESIZE}), SYNTHESIZE, SpanKind.SERVER)
    assert server.context.trace_id == trace_id
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 3
    # The caller's mistake, not the server's: the span is not marked as an error.
    assert server.status.status_code.name == "UNSET"


def test_the_otlp_exporter_delivers_spans_to_a_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_EXPORTER=otlp as production runs it, against a real OTLP/gRPC endpoint on loopback."""
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
        provider = tracing.provider_from_environment("voxcache-synthesizer", {"OTEL_TRACES_EXPORTER": "otlp"})
        assert provider is not None
        tracing.enable(provider)
        try:
            with tracing.span("voxcache.synthesize.sentence", {tracing.SENTENCE_INDEX: 0}):
                pass
            assert provider.force_flush(10_000)
        finally:
            tracing.disable()
            provider.shutdown()
    finally:
        server.stop(None)
    spans = [
        (resource.resource, span)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for _, span in spans] == ["voxcache.synthesize.sentence"]
    service = {a.key: a.value.string_value for a in spans[0][0].attributes}["service.name"]
    assert service == "voxcache-synthesizer"
