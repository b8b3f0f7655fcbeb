"""The server span of every call, continuing the caller's W3C trace: a lean grpc.aio interceptor.

Why not opentelemetry-instrumentation-grpc's aio server interceptor (its client side is used,
services/common/tracing.py): per call it wraps the servicer context in a proxy object, copies
the metadata into a dict, parses the peer address and cleans seven attributes, which on an
Embed cache hit (a few hundred microseconds) cost about as much again as the span itself
(bench/tracing_bench.py). This one starts a `ServerCall` (deferred_span.py): the span is made
when a child needs it, or after the answer has gone, from the caller's context read with the
configured propagators (`OTEL_PROPAGATORS`, W3C tracecontext and baggage by default). It is a
SERVER span named like the library's (`/package.Service/Method`) with the same `rpc.*`
attribute names and the status code the handler ended with. Health and reflection calls are
not traced: probes every few seconds would bury the requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace

from services.common.auth_interceptor import OPEN_SERVICES
from services.common.deferred_span import ServerCall, current_call, rpc_attributes
from services.common.ended_spans import EndedSpanWriter
from services.common.handler_wrap import rewrap


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        #: How a call's unneeded spans are written at its end, decided once per tracer (ended_spans.py).
        self._writer = EndedSpanWriter.for_tracer(tracer)
        #: Per method, the last handler wrapped and its wrapper: a method's handler is one object
        #: for the life of the server unless an interceptor after this one wraps it per call
        #: (authentication with tenants), so a call usually reuses its method's wrapper.
        self._wrappers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        known = self._wrappers.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapper = _wrapped(handler, self._tracer, self._writer, method)
        self._wrappers[method] = (handler, wrapper)
        return wrapper


def _code(context: grpc.aio.ServicerContext, failed: BaseException | None) -> grpc.StatusCode:
    return context.code() or (grpc.StatusCode.OK if failed is None else grpc.StatusCode.UNKNOWN)


def _wrapped(
    handler: grpc.RpcMethodHandler, tracer: trace.Tracer, writer: EndedSpanWriter | None, method: str
) -> grpc.RpcMethodHandler:
    """The same handler as a traced `ServerCall` whose parent is the caller's (all four call shapes);
    `writer` writes the spans nothing needed during the call (None: the SDK makes them).

    Each call runs in its own asyncio task, so the context variable set here is that call's
    alone and needs no reset."""
    attributes = rpc_attributes(method)

    def begin(context: grpc.aio.ServicerContext) -> ServerCall:
        call = ServerCall(tracer, method, context.invocation_metadata() or (), attributes, writer)
        current_call.set(call)
        return call

    def unary(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = begin(context)
            failed: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                failed = exc
                raise
            finally:
                call.end(_code(context, failed))

        return run

    def streaming(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = begin(context)
            failed: BaseException | None = None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                failed = exc
                raise
            finally:
                call.end(_code(context, failed))

        return run

    return rewrap(handler, unary, streaming)
