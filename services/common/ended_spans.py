"""Spans written already ended, straight to the SDK's span processors.

Why: a cache hit's spans are made after its answer has gone (deferred_span.py), when their
times, attributes and status are all known. Made through the SDK's `start_span` and `end`,
each still pays for a span that could change: its attributes cleaned into a locked, bounded
mapping, two locks, the processors' start and ending hooks, and a copy into the read-only span
that processors receive. That was about 60 µs of CPU for a hit's two spans, right after the
answer, where the next request on the connection waits for it (bench/tracing_bench.py). This
writes that read-only span (`ReadableSpan`, what `on_end` receives from the SDK itself) in
one step, about 20 µs for the two.

The decisions stay the SDK's: the provider's sampler (so `OTEL_TRACES_SAMPLER` and the
caller's sampled flag are honoured as for any span), its id generator, resource and span
processors. What it leaves out, and why that is safe here: the processors' `on_start` and
ending hooks (the batch and simple processors do nothing in them, and these spans cannot be
changed any more), and attribute cleaning (voxcache's attributes are plain strings, numbers
and booleans). Where leaving something out would change what is exported it is not used, and
the caller makes its spans through the SDK as before: a tracer that is not the SDK's own, an
attribute length limit (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`), more attributes than the count
limit, or the SDK's own span metrics switched on. tests/test_deferred_span.py checks that a
call's spans come out the same either way.

The SDK is imported only when a writer is made: this module is loaded by every server through
deferred_span.py, and while tracing is off no server loads the SDK (tracing.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer

#: Span attributes as voxcache sets them: plain values only (deferred_span.py and tracing.py use it too).
Attributes = Mapping[str, str | bool | int | float]

#: The SDK's switch for its own span metrics, which only its own `start_span` records.
_SDK_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"
UNSET = Status()


class EndedSpanWriter:
    """Writes finished spans for one SDK tracer; build it with `for_tracer`."""

    def __init__(self, tracer: Tracer, max_attributes: int, scope: Any, span_class: type) -> None:
        self._tracer = tracer
        self._max_attributes = max_attributes
        self._scope = scope
        self._span_class = span_class  # the SDK's ReadableSpan

    @classmethod
    def for_tracer(cls, tracer: trace.Tracer) -> EndedSpanWriter | None:
        """A writer for `tracer`, or None where its spans must go through the SDK (see the module)."""
        from opentelemetry.sdk.trace import ReadableSpan, Tracer

        if type(tracer) is not Tracer or os.environ.get(_SDK_METRICS, "").strip().lower() == "true":
            return None
        limits = getattr(tracer, "_span_limits", None)
        scope = getattr(tracer, "_instrumentation_scope", None)
        if limits is None or scope is None or not callable(getattr(tracer, "_is_enabled", None)):
            return None  # an SDK whose internals moved: its own path is slower, never wrong
        if limits.max_attribute_length is not None or limits.max_span_attributes is None:
            return None
        return cls(tracer, limits.max_span_attributes, scope, ReadableSpan)

    def fits(self, attributes: int) -> bool:
        """Whether a span with this many attributes comes out as the SDK would make it (none dropped)."""
        return attributes <= self._max_attributes

    def write(
        self,
        name: str,
        parent: otel_context.Context,
        kind: SpanKind,
        attributes: Attributes,
        start_ns: int,
        end_ns: int,
        *,
        ended: Attributes | None = None,
        status: Status = UNSET,
    ) -> SpanContext:
        """One span from `start_ns` to `end_ns` under the span current in `parent`, handed to the
        processors if the sampler records it. `attributes` are the span's at its start (what
        the sampler sees), `ended` those set later. Returns its context, the parent of its
        children (not sampled: a context the children's sampler sees as such)."""
        tracer = self._tracer
        current = trace.get_current_span(parent).get_span_context()
        if not tracer._is_enabled():  # private, so checked to exist in for_tracer
            return current  # the SDK's disabled tracer: a non-recording span in its parent's context
        ids = tracer.id_generator
        parent_span: SpanContext | None = current
        if current.is_valid:
            trace_id, random_trace_id = current.trace_id, current.trace_flags.random_trace_id
        else:
            parent_span, trace_id, random_trace_id = None, ids.generate_trace_id(), ids.is_trace_id_random()
        sampling = tracer.sampler.should_sample(parent, trace_id, name, kind, attributes, ())
        flags = TraceFlags.SAMPLED if sampling.decision.is_sampled() else TraceFlags.DEFAULT
        if random_trace_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        own = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=sampling.trace_state,
        )
        if sampling.decision.is_recording():
            tracer.span_processor.on_end(
                self._span_class(
                    name,
                    own,
                    parent_span,
                    tracer.resource,
                    {**sampling.attributes, **ended} if ended else dict(sampling.attributes),
                    kind=kind,
                    status=status,
                    start_time=start_ns,
                    end_time=end_ns,
                    instrumentation_scope=self._scope,
                )
            )
        return own
