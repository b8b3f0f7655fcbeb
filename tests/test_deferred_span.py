"""Deferred server spans (services/common/deferred_span.py) over real grpc.aio servers on loopback.

A bare service with three methods shows each way a call's span comes to be: a hit-like call
that only records a child (made after the answer), a call with a child span block (made when
the block starts), and a call that calls another service (made for the outgoing call's client
span). Spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common import tracing

SERVICE = "voxcache.test.Traced"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable(provider)
    yield memory
    tracing.disable()
    provider.shutdown()


class Service:
    """Handlers on raw bytes; `spans_at_answer` is how many spans had ended when each answered."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter
        self.spans_at_answer: list[int] = []
        self.channel: grpc.aio.Channel | None = None
        self.target = ""

    async def hit(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.time_ns()
        tracing.annotate({"voxcache.test.on_server": True})
        tracing.record("test.lookup", started, {tracing.TIER: "local"})
        self.spans_at_answer.append(len(self.exporter.get_finished_spans()))
        return request

    async def miss(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        tracing.record("test.lookup", time.time_ns(), {tracing.TIER: "computed"})
        with tracing.span("test.extract"):
            await asyncio.sleep(0)
        return request

    async def stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for index in range(2):
            with tracing.span("test.sentence", {tracing.SENTENCE_INDEX: index}):
                await asyncio.sleep(0)
            yield request

    async def forward(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        assert self.channel is not None
        response: bytes = await self.channel.unary_unary(f"/{SERVICE}/hit")(request, timeout=10)
        return response


@pytest.fixture
async def service(exporter: InMemorySpanExporter) -> AsyncIterator[Service]:
    service = Service(exporter)
    server = grpc.aio.server(interceptors=tracing.server_interceptors())
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(getattr(service, name)) for name in ("hit", "miss", "forward")
    }
    handlers["stream"] = grpc.unary_stream_rpc_method_handler(service.stream)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    service.target = f"127.0.0.1:{port}"
    service.channel = grpc.aio.insecure_channel(service.target, interceptors=tracing.client_interceptors())
    yield service
    await service.channel.close()
    await server.stop(None)


def traceparent() -> tuple[str, str, str]:
    """A W3C traceparent for a sampled trace, with its trace id and parent span id in hex."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


async def call(service: Service, method: str) -> tuple[str, str]:
    header, trace_id, parent_id = traceparent()
    # A plain channel: the caller's own traceparent is the one the server must continue.
    async with grpc.aio.insecure_channel(service.target) as plain:
        await plain.unary_unary(f"/{SERVICE}/{method}")(b"x", metadata=(("traceparent", header),), timeout=10)
    return trace_id, parent_id


async def finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    for _ in range(200):
        spans = list(exporter.get_finished_spans())
        if len(spans) >= count:
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(exporter.get_finished_spans())} of {count} spans finished")


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    """The one span of that name that is not a client span (a client span is named like its call)."""
    (span,) = [s for s in spans if s.name == name and s.kind is not SpanKind.CLIENT]
    return span


def parent_id(span: ReadableSpan) -> str:
    assert span.parent is not None, f"{span.name} has no parent"
    return format(span.parent.span_id, "016x")


def span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


async def test_a_hit_is_traced_after_its_answer_with_the_same_spans_and_links(
    exporter: InMemorySpanExporter, service: Service
) -> None:
    trace_id, caller = await call(service, "hit")
    spans = await finished(exporter, 2)
    assert service.spans_at_answer == [0]  # nothing of the SDK's ran before the answer
    server, lookup = named(spans, f"/{SERVICE}/hit"), named(spans, "test.lookup")
    assert server.kind is SpanKind.SERVER and parent_id(server) == caller
    assert format(server.context.trace_id, "032x") == trace_id == format(lookup.context.trace_id, "032x")
    assert parent_id(lookup) == span_id(server)
    assert server.start_time is not None and server.end_time is not None
    assert lookup.start_time is not None and lookup.end_time is not None
    assert server.start_time <= lookup.start_time <= lookup.end_time <= server.end_time
    assert server.attributes is not None and lookup.attributes is not None
    assert server.attributes["rpc.method"] == "hit" and server.attributes["rpc.grpc.status_code"] == 0
    assert server.attributes["voxcache.test.on_server"] is True  # annotated before the span existed
    assert lookup.attributes[tracing.TIER] == "local"


async def test_a_child_span_block_makes_the_call_span_when_it_starts(
    exporter: InMemorySpanExporter, service: Service
) -> None:
    _, caller = await call(service, "miss")
    spans = await finished(exporter, 3)
    server = named(spans, f"/{SERVICE}/miss")
    lookup, extract = named(spans, "test.lookup"), named(spans, "test.extract")
    assert parent_id(server) == caller
    assert parent_id(lookup) == span_id(server) == parent_id(extract)
    assert server.start_time is not None and lookup.start_time is not None and extract.start_time is not None
    assert server.start_time <= lookup.start_time <= extract.start_time


async def test_a_streaming_call_is_traced_the_same_way(exporter: InMemorySpanExporter, service: Service) -> None:
    header, _, caller = traceparent()
    async with grpc.aio.insecure_channel(service.target) as plain:
        call = plain.unary_stream(f"/{SERVICE}/stream")(b"x", metadata=(("traceparent", header),), timeout=10)
        assert [response async for response in call] == [b"x", b"x"]
    spans = await finished(exporter, 3)
    server = named(spans, f"/{SERVICE}/stream")
    sentences = [s for s in spans if s.name == "test.sentence"]
    assert parent_id(server) == caller and len(sentences) == 2
    assert all(parent_id(sentence) == span_id(server) for sentence in sentences)
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 0


async def test_an_outgoing_call_continues_the_served_calls_trace(
    exporter: InMemorySpanExporter, service: Service
) -> None:
    trace_id, caller = await call(service, "forward")
    spans = await finished(exporter, 4)
    outer = named(spans, f"/{SERVICE}/forward")
    (client,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    inner = named(spans, f"/{SERVICE}/hit")
    assert parent_id(outer) == caller
    assert parent_id(client) == span_id(outer)
    assert parent_id(inner) == span_id(client)
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}


class _Context:
    """What the tracing wrapper reads of a servicer context: the headers, and the code the handler set (none)."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def code(self) -> grpc.StatusCode | None:
        return None


async def test_the_sdk_work_of_a_hit_runs_after_the_handler_has_answered(exporter: InMemorySpanExporter) -> None:
    """Called as gRPC calls it: when the wrapped handler returns (gRPC then sends the answer), no
    span has been made; they are made on the loop's next turn."""
    from services.common.ended_spans import EndedSpanWriter
    from services.common.tracing_interceptor import _wrapped

    provider = tracing.provider()
    assert provider is not None

    async def hit(request: bytes, context: Any) -> bytes:
        tracing.record("test.lookup", time.time_ns(), {tracing.TIER: "local"})
        return request

    header, _, caller = traceparent()
    tracer = provider.get_tracer("test")
    handler = _wrapped(grpc.unary_unary_rpc_method_handler(hit), tracer, EndedSpanWriter.for_tracer(tracer), "/x.Y/Z")
    assert await handler.unary_unary(b"x", _Context((("traceparent", header),))) == b"x"
    assert len(exporter.get_finished_spans()) == 0
    await asyncio.sleep(0)
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 2 and parent_id(named(spans, "/x.Y/Z")) == caller


class _Details(NamedTuple):
    """A grpc.HandlerCallDetails (a protocol: gRPC passes its own class)."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


async def test_a_methods_wrapper_is_reused_only_while_its_handler_is_the_same(
    exporter: InMemorySpanExporter,
) -> None:
    """Per call, the interceptor reuses its method's wrapper; a handler made per call (an
    authenticating interceptor after it) gets a wrapper of its own, never another call's."""
    from services.common.tracing_interceptor import ServerTracingInterceptor

    provider = tracing.provider()
    assert provider is not None
    interceptor = ServerTracingInterceptor(provider.get_tracer("test"))
    details = _Details("/x.Y/Z", ())

    async def behavior(request: bytes, context: Any) -> bytes:
        return request

    stable = grpc.unary_unary_rpc_method_handler(behavior)

    async def same(_: Any) -> grpc.RpcMethodHandler:
        return stable

    async def fresh(_: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(behavior)

    first = await interceptor.intercept_service(same, details)
    assert await interceptor.intercept_service(same, details) is first
    assert await interceptor.intercept_service(fresh, details) is not first
    assert await interceptor.intercept_service(same, details) is not first  # re-made for the stable one


def _comparable(span: ReadableSpan, caller: str) -> dict[str, Any]:
    """What an exporter sends of a span, with its random ids replaced by their relation to the call's."""
    parent = parent_id(span) if span.parent is not None else None
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": "caller" if parent == caller else ("none" if parent is None else "own"),
        "attributes": dict(span.attributes or {}),
        "status": (span.status.status_code, span.status.description),
        "times": (span.start_time, span.end_time),
        "flags": span.context.trace_flags,
        "state": span.context.trace_state,
        "resource": span.resource.attributes,
        "scope": (span.instrumentation_scope.name if span.instrumentation_scope else None),
        "dropped": span.dropped_attributes,
    }


@pytest.mark.parametrize(
    ("sampled", "code"),
    [
        ("01", grpc.StatusCode.OK),
        ("01", grpc.StatusCode.INTERNAL),
        ("00", grpc.StatusCode.OK),
        ("", grpc.StatusCode.OK),
    ],
)
def test_spans_written_ended_come_out_as_the_sdk_makes_them(sampled: str, code: grpc.StatusCode) -> None:
    """A hit's spans written straight to the processors (ended_spans.py) equal the ones the SDK's
    own start/end makes for the same call: sampled or not by the caller, with or without a caller,
    a failed call's status included."""
    from opentelemetry.sdk.resources import Resource

    from services.common.deferred_span import ServerCall, rpc_attributes
    from services.common.ended_spans import EndedSpanWriter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "voxcache-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("voxcache.grpc")
    writer = EndedSpanWriter.for_tracer(tracer)
    assert writer is not None, "the locked SDK must take the cheap path"
    header, trace_id, caller = traceparent()
    metadata = (("traceparent", header[:-2] + sampled),) if sampled else ()
    made: list[list[dict[str, Any]]] = []
    for with_writer in (False, True):
        exporter.clear()
        call = ServerCall(tracer, "/x.Y/Z", metadata, rpc_attributes("/x.Y/Z"), writer if with_writer else None)
        call._start_ns = 1_000
        call.annotate({"voxcache.test.on_server": True})
        call._recorded.append(("test.lookup", 1_100, 1_200, {tracing.TIER: "redis", tracing.AUDIO_BYTES: 7}))
        call._finish(code, 2_000)
        spans = list(exporter.get_finished_spans())
        if spans:
            server, child = named(spans, "/x.Y/Z"), named(spans, "test.lookup")
            assert child.context.trace_id == server.context.trace_id
            assert parent_id(child) == span_id(server)
            assert (format(server.context.trace_id, "032x") == trace_id) == bool(sampled)
        made.append([_comparable(span, caller) for span in sorted(spans, key=lambda s: s.name)])
    through_sdk, written = made
    assert written == through_sdk
    assert len(written) == (0 if sampled == "00" else 2)


def test_spans_go_through_the_sdk_where_writing_them_ended_would_change_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A length limit on attribute values, or the SDK's own span metrics, need its own path."""
    from services.common.ended_spans import EndedSpanWriter

    assert EndedSpanWriter.for_tracer(TracerProvider().get_tracer("x")) is not None
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8")
    assert EndedSpanWriter.for_tracer(TracerProvider().get_tracer("x")) is None
    monkeypatch.delenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    assert EndedSpanWriter.for_tracer(TracerProvider().get_tracer("x")) is None
