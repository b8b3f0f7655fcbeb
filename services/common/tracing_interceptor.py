"""The server span of every call, continuing the caller's W3C trace: a lean grpc.aio interceptor.

Why not opentelemetry-instrumentation-grpc's aio server interceptor (its client side is used,
services/common/tracing.py): per call it wraps the servicer context in a proxy object, copies
the metadata into a dict, parses the peer address and cleans seven attributes, which on an
Embed cache hit (a few hundred microseconds) cost about as much again as the span itself
(bench/tracing_bench.py). This one extracts the context with the configured propagators
(`OTEL_PROPAGATORS`, W3C tracecontext and baggage by default), opens a SERVER span named like
the library's (`/package.Service/Method`) with the same `rpc.*` attribute names, and records
the status code the handler ended with. Health and reflection calls are not traced: probes
every few seconds would bury the requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common.auth_interceptor import OPEN_SERVICES
from services.common.handler_wrap import rewrap

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


_getter = _Carrier()


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        return _wrapped(handler, self._tracer, method, details.invocation_metadata or ())


def _attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _finish(span: trace.Span, context: grpc.aio.ServicerContext, failed: BaseException | None) -> None:
    """The call's status code on its span; ERROR for the codes that mean the server failed."""
    code = context.code() or (grpc.StatusCode.OK if failed is None else grpc.StatusCode.UNKNOWN)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, code.name))


def _wrapped(handler: grpc.RpcMethodHandler, tracer: trace.Tracer, method: str, metadata: Any) -> grpc.RpcMethodHandler:
    """The same handler inside a SERVER span whose parent is the caller's (all four call shapes)."""

    def span() -> Any:
        # record_exception / set_status off: aborts are statuses, recorded by _finish, not crashes.
        return tracer.start_as_current_span(
            method,
            context=propagate.extract(metadata, getter=_getter),
            kind=SpanKind.SERVER,
            attributes=_attributes(method),
            record_exception=False,
            set_status_on_exception=False,
        )

    def unary(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with span() as current:
                failed: BaseException | None = None
                try:
                    return await behavior(request, context)
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    _finish(current, context, failed)

        return run

    def streaming(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with span() as current:
                failed: BaseException | None = None
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as exc:
                    failed = exc
                    raise
                finally:
                    _finish(current, context, failed)

        return run

    return rewrap(handler, unary, streaming)
