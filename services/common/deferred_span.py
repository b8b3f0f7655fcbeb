"""A call's server span, made only when something needs it, else after the answer is sent.

Why: a cache hit is a few hundred microseconds, and two SDK spans (the call's and its lookup's)
plus reading the caller's `traceparent` cost about a seventh of that on the request's own path
(bench/tracing_bench.py). Yet a hit's spans have no child that needs a live parent: the lookup
is recorded after the fact anyway. So the server interceptor (tracing_interceptor.py) starts a
`ServerCall` instead of a span: the start time, the method and the call's metadata, nothing
parsed. Then either

- something needs the span as a parent while the call runs (a `tracing.span` block: decode,
  extract, a sentence; an outgoing call, through `CallContextInterceptor`): `context()` makes
  it there and then, with the call's start time, and everything after is as if it had been made
  at the start; or
- nothing did (a hit): the spans recorded meanwhile (`tracing.record`) are kept as plain tuples,
  and at the end `end()` hands the lot to the event loop's next turn, after gRPC has taken the
  answer, where the server span and its children are made with the times they happened.

Either way the exported spans, their parent links and their times are the same as if they had
been made as the call went; only when the SDK's work is done differs. The span is never made
current in the handler's own context (that would need a reset in the same context, and a task
the handler starts has a copy); parents are passed explicitly instead. Only the client
interceptor below attaches it, in the task gRPC runs an outgoing call's interceptors in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode

from services.common.ended_spans import UNSET, Attributes, EndedSpanWriter

#: Status codes a server span marks as an error (the OpenTelemetry rpc conventions for servers).
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class _Carrier:
    """Reads headers straight from the call's metadata tuple: no dict is built per call."""

    @staticmethod
    def get(carrier: Any, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    @staticmethod
    def keys(carrier: Any) -> list[str]:
        return [name for name, _ in carrier]


GETTER = _Carrier()


def rpc_attributes(method: str) -> Attributes:
    """The rpc.* attributes of opentelemetry-instrumentation-grpc's server spans, for `/pkg.Service/Method`."""
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


#: The attribute that holds a call's status code (the OpenTelemetry rpc conventions for gRPC).
STATUS_CODE = "rpc.grpc.status_code"


def status_of(code: grpc.StatusCode) -> Status:
    """ERROR for the codes that mean the server failed; else unset."""
    return Status(StatusCode.ERROR, code.name) if code in SERVER_ERRORS else UNSET


def set_status(span: trace.Span, code: grpc.StatusCode) -> None:
    """The call's status code on its span, and its status."""
    span.set_attribute(STATUS_CODE, code.value[0])
    if code in SERVER_ERRORS:
        span.set_status(status_of(code))


class ServerCall:
    """One call being served: its server span, once something has needed it."""

    __slots__ = (
        "_attributes",
        "_context",
        "_metadata",
        "_method",
        "_recorded",
        "_span",
        "_start_ns",
        "_tracer",
        "_writer",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        method: str,
        metadata: Any,
        attributes: Attributes,
        writer: EndedSpanWriter | None = None,
    ) -> None:
        """`attributes`: the server span's, shared by every call of the method (never mutated here).
        `writer`: how spans never needed during the call are written at its end (ended_spans.py);
        None makes them through the SDK like the others."""
        self._tracer = tracer
        self._writer = writer
        self._method = method
        self._metadata = metadata
        self._attributes = attributes
        self._start_ns = time.time_ns()
        #: Child spans recorded before the server span existed: (name, start, end, attributes).
        self._recorded: list[tuple[str, int, int, Attributes]] = []
        self._span: trace.Span | None = None
        self._context: otel_context.Context | None = None

    def context(self) -> otel_context.Context:
        """A context whose current span is this call's server span, made now if not yet made
        (with the call's start time; the children recorded so far are made under it)."""
        if self._context is None:
            span = self._tracer.start_span(
                self._method,
                context=propagate.extract(self._metadata, getter=GETTER),
                kind=SpanKind.SERVER,
                attributes=self._attributes,
                start_time=self._start_ns,
                record_exception=False,
                set_status_on_exception=False,
            )
            self._span, self._context = span, trace.set_span_in_context(span)
            for name, start_ns, end_ns, attributes in self._recorded:
                self._child(name, start_ns, end_ns, attributes)
            self._recorded.clear()
        return self._context

    def record(self, name: str, start_ns: int, attributes: Attributes) -> None:
        """A child span from `start_ns` to now: kept as a tuple while the server span is unmade."""
        end_ns = time.time_ns()
        if self._context is None:
            self._recorded.append((name, start_ns, end_ns, attributes))
        else:
            self._child(name, start_ns, end_ns, attributes)

    def annotate(self, attributes: Attributes) -> None:
        """Attributes of the server span, wherever it is in its life."""
        if self._span is None:
            self._attributes = {**self._attributes, **attributes}  # a copy: the method's own is shared
        else:
            self._span.set_attributes(attributes)

    def end(self, code: grpc.StatusCode) -> None:
        """The call is over with `code`: end its span now if it was made, else make and end it
        (and its recorded children) on the event loop's next turn, once gRPC has taken the answer.

        The next turn rather than in batches: measured (bench/tracing_bench.py), a batch every
        5 ms, or of 16 or 32 calls, cost the p50 more; one of 64 calls helped the p50 and the
        CPU but kept one request in 64 waiting ~2 ms behind it (p99 +1.5-2 ms). Right behind the
        answer the work overlaps the caller's own turnaround, and no request waits for more
        than one call's spans."""
        end_ns = time.time_ns()
        if self._span is not None:
            self._finish(code, end_ns)
        else:
            asyncio.get_running_loop().call_soon(self._finish, code, end_ns)

    def _finish(self, code: grpc.StatusCode, end_ns: int) -> None:
        writer = self._writer
        if self._span is None and writer is not None and self._fit_for(writer):
            self._write_ended(writer, code, end_ns)
            return
        self.context()
        assert self._span is not None
        set_status(self._span, code)
        self._span.end(end_time=end_ns)

    def _fit_for(self, writer: EndedSpanWriter) -> bool:
        """Whether every span of the call comes out of `writer` as the SDK would make it (the
        server span gets one attribute more, its status code)."""
        return writer.fits(len(self._attributes) + 1) and all(
            writer.fits(len(attributes)) for *_, attributes in self._recorded
        )

    def _write_ended(self, writer: EndedSpanWriter, code: grpc.StatusCode, end_ns: int) -> None:
        """The spans `context()` and `_child` would have made, written already ended."""
        server = writer.write(
            self._method,
            propagate.extract(self._metadata, getter=GETTER),
            SpanKind.SERVER,
            self._attributes,
            self._start_ns,
            end_ns,
            ended={STATUS_CODE: code.value[0]},
            status=status_of(code),
        )
        under = trace.set_span_in_context(NonRecordingSpan(server))
        for name, start_ns, child_end_ns, attributes in self._recorded:
            writer.write(name, under, SpanKind.INTERNAL, attributes, start_ns, child_end_ns)
        self._recorded.clear()

    def _child(self, name: str, start_ns: int, end_ns: int, attributes: Attributes) -> None:
        self._tracer.start_span(name, context=self._context, start_time=start_ns, attributes=attributes).end(
            end_time=end_ns
        )


#: The call this task serves, while tracing is on (set by the server interceptor).
current_call: ContextVar[ServerCall | None] = ContextVar("voxcache_server_call", default=None)


def served_call() -> ServerCall | None:
    """The call being served when no span is current in this task (its own span never is):
    then a new span, a recorded child or an attribute belongs to that call's span. None when a
    span is current (it is the parent, the SDK's default) or no call is being served."""
    call = current_call.get()
    if call is None or trace.get_current_span().get_span_context().is_valid:
        return None
    return call


def parent_context() -> otel_context.Context | None:
    """Where a new span belongs: the server span of the call being served (made now if need
    be) when `served_call` names one; else None (the current span, or a root)."""
    call = served_call()
    return None if call is None else call.context()


class CallContextInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """First of the client interceptors: an outgoing call made while serving one continues its
    trace. It makes the served call's span current for the interceptors after it (the
    OpenTelemetry client span and its `traceparent`), which run in the same task as this one."""

    async def _with_parent(self, call: Callable[[], Awaitable[Any]]) -> Any:
        parent = parent_context()
        if parent is None:
            return await call()
        token = otel_context.attach(parent)
        try:
            return await call()
        finally:
            otel_context.detach(token)

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._with_parent(lambda: continuation(client_call_details, request))

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._with_parent(lambda: continuation(client_call_details, request))

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self._with_parent(lambda: continuation(client_call_details, request_iterator))

    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: AsyncIterator[Any]
    ) -> Any:
        return await self._with_parent(lambda: continuation(client_call_details, request_iterator))
