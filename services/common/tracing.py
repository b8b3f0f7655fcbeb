"""OpenTelemetry tracing for both services: off unless the standard OTEL_* variables turn it on.

Why a module of our own rather than the SDK's auto-configuration: voxcache must cost nothing
when nobody traces (the Embed hit is a few hundred microseconds), so while tracing is off no
SDK provider exists, no gRPC interceptor is installed, and `span()` hands back one shared
do-nothing context manager without touching OpenTelemetry at all. When on, one
`TracerProvider` (this process's) feeds the aio client interceptors of opentelemetry-instrumentation-grpc
(client spans that send the W3C `traceparent` on), a lean server interceptor of our own
(tracing_interceptor.py: server spans that continue the caller's trace) and the few spans of
our own (decode, cache lookup, extraction, per-sentence synthesis).

Turned on by `OTEL_TRACES_EXPORTER` (`otlp`, `console`, comma-separated; unset or `none` is
off, unlike the SDK's own default of `otlp`: a server must not start exporting by surprise).
Everything else is the SDK's standard variables, read by the SDK itself: `OTEL_SERVICE_NAME`
(default: the service's own name), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and
`OTEL_TRACES_SAMPLER_ARG`, `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT` and their
headers and certificates, `OTEL_BSP_*`, `OTEL_PROPAGATORS`, and `OTEL_SDK_DISABLED=true`.

Attributes are what an operator needs to find a slow request and nothing of the caller's
content: tiers, encoder and backend names, batch sizes, sentence indexes, byte and sample
counts. Never audio, text, tokens, tensors, voice names, cache keys or credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from services.common.deferred_span import parent_context, served_call
from services.common.ended_spans import Attributes

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

#: Span attribute names of our own spans (the gRPC ones follow OpenTelemetry's rpc.* conventions).
TIER = "voxcache.cache.tier"
CACHE_HIT = "voxcache.cache.hit"
ENCODER = "voxcache.encoder"
BATCH_SIZE = "voxcache.batch.size"
AUDIO_BYTES = "voxcache.audio.bytes"
SAMPLES = "voxcache.audio.samples"
BACKEND = "voxcache.backend"
SENTENCE_INDEX = "voxcache.sentence.index"
SENTENCE_CHARS = "voxcache.sentence.chars"
SENTENCES = "voxcache.sentences"
SOURCE = "voxcache.voice.source"

_NOTHING = contextlib.nullcontext()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


class TracingConfigError(ValueError):
    """OTEL_* variables this build cannot honour: the server refuses to start rather than not trace."""


def enabled() -> bool:
    return _tracer is not None


def provider() -> TracerProvider | None:
    """The provider calls are traced into, None while tracing is off."""
    return _provider


def enable(provider: TracerProvider) -> None:
    """Trace this process's calls into `provider` (tests pass one with an in-memory exporter).

    Servers and gateways built after this call carry the interceptors; ones built before do not.
    """
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("voxcache")


def disable() -> None:
    """Stop tracing calls made from now on (the provider is left to its owner to shut down)."""
    global _provider, _tracer
    _provider, _tracer = None, None


def exporters_named(env: Mapping[str, str]) -> list[str]:
    """The exporters OTEL_TRACES_EXPORTER asks for; empty means tracing is off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return [name for name in names if name and name != "none"]


def provider_from_environment(service_name: str, env: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A provider configured by the OTEL_* variables, or None when they leave tracing off.

    Raises TracingConfigError for an exporter this build does not have, so a typo stops the start
    instead of silently tracing nothing.
    """
    env = os.environ if env is None else env
    names = exporters_named(env)
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    unknown = sorted(set(names) - {"otlp", "console"})
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: unknown exporter(s) {', '.join(unknown)}; use otlp, console or none"
        )
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER(_ARG)
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, TLS from OTEL_EXPORTER_OTLP_*
        else:
            exporter = ConsoleSpanExporter(service_name=service_name)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_from_environment(service_name: str) -> TracerProvider | None:
    """At a server's start: enable tracing if OTEL_* asks for it, and say so in the log."""
    provider = provider_from_environment(service_name)
    if provider is None:
        log.info("tracing off (set OTEL_TRACES_EXPORTER=otlp to turn it on)")
        return None
    trace.set_tracer_provider(provider)  # so any library that traces through the global API joins in
    enable(provider)
    log.info("tracing on: exporter(s) %s", os.environ.get("OTEL_TRACES_EXPORTER"))
    return provider


def shutdown() -> None:
    """Flush and stop the provider this process enabled (spans still queued are exported)."""
    provider = _provider
    disable()
    if provider is not None:
        provider.shutdown()


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The server span of every call but health and reflection, continuing the caller's trace
    (services/common/tracing_interceptor.py); empty while tracing is off. Must come first, so
    its span covers authentication too."""
    if _provider is None:
        return []
    from services.common.tracing_interceptor import ServerTracingInterceptor

    return [ServerTracingInterceptor(_provider.get_tracer("voxcache.grpc"))]


def client_interceptors() -> Sequence[grpc.aio.ClientInterceptor]:
    """A client span per call that sends the current trace on as `traceparent` (a call made while
    serving one is its child); empty while off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    from services.common.deferred_span import CallContextInterceptor

    # First: it makes the served call's (deferred) span the parent of the client span after it.
    return [CallContextInterceptor(), *aio_client_interceptors(tracer_provider=_provider)]


def span(
    name: str, attributes: Attributes | None = None, *, start_ns: int | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one around a block; a shared no-op while tracing is off.

    `start_ns` (time.time_ns()): when the work began, if before the block (a lookup whose first
    step ran before it was known to be a miss). Use only around code that runs on the event
    loop (an `await` of executor work is fine): the span is the current one in this task's
    context, which executor threads do not see.
    """
    tracer = _tracer
    if tracer is None:
        return _NOTHING
    return tracer.start_as_current_span(name, parent_context(), attributes=attributes, start_time=start_ns)


def record(name: str, start_ns: int, attributes: Attributes) -> None:
    """A child span of the current one that began at `start_ns` (time.time_ns()) and ends now.

    For work already done whose attributes are all known at its end (a hit's lookup): directly
    under the call being served, it is kept as a tuple and made with the call's own span, after
    the answer has gone when nothing else needed that span (deferred_span.py).
    """
    tracer = _tracer
    if tracer is None:
        return
    call = served_call()
    if call is not None:
        call.record(name, start_ns, attributes)
    else:
        tracer.start_span(name, start_time=start_ns, attributes=attributes).end()


def annotate(attributes: Attributes) -> None:
    """Add attributes to the current span, else to the server span of the call being served
    (nothing while tracing is off, or with neither)."""
    if _tracer is None:
        return
    call = served_call()
    if call is not None:
        call.annotate(attributes)
    else:
        trace.get_current_span().set_attributes(attributes)
