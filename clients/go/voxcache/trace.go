package voxcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TraceParentHeader is the W3C Trace Context header, as gRPC metadata. The services
// continue the trace it names (their OpenTelemetry server spans become its children)
// and forward it from the Synthesizer to the Embedder, so one request is one trace.
const TraceParentHeader = "traceparent"

// TraceParent is a W3C traceparent (version 00): the trace a call belongs to and
// the caller's span, its parent there.
//
// This is the hand-made half of OpenTelemetry: Debian's Go toolchain has no otelgrpc
// interceptor, so without a module proxy the client passes a header instead of opening
// spans of its own. An application that already uses OpenTelemetry adds
// go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc to its
// dial options and leaves this out (clients/go/README.md).
type TraceParent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Sampled bool
}

// NewTraceParent starts a new sampled trace with random ids.
func NewTraceParent() (TraceParent, error) {
	var t TraceParent
	if _, err := rand.Read(t.TraceID[:]); err != nil {
		return t, fmt.Errorf("voxcache: trace id: %w", err)
	}
	if _, err := rand.Read(t.SpanID[:]); err != nil {
		return t, fmt.Errorf("voxcache: span id: %w", err)
	}
	t.Sampled = true
	return t, nil
}

// ParseTraceParent reads a version-00 traceparent ("00-<32 hex>-<16 hex>-<2 hex>").
// All-zero ids are invalid, as the W3C spec says.
func ParseTraceParent(value string) (TraceParent, error) {
	var t TraceParent
	parts := strings.Split(strings.TrimSpace(value), "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return t, fmt.Errorf("voxcache: traceparent %q is not 00-<32 hex>-<16 hex>-<2 hex>", value)
	}
	flags, err := hex.DecodeString(parts[3])
	if err != nil {
		return t, fmt.Errorf("voxcache: traceparent flags %q: %w", parts[3], err)
	}
	if _, err := hex.Decode(t.TraceID[:], []byte(parts[1])); err != nil {
		return t, fmt.Errorf("voxcache: traceparent trace id: %w", err)
	}
	if _, err := hex.Decode(t.SpanID[:], []byte(parts[2])); err != nil {
		return t, fmt.Errorf("voxcache: traceparent parent id: %w", err)
	}
	if t.TraceID == [16]byte{} || t.SpanID == [8]byte{} {
		return t, fmt.Errorf("voxcache: traceparent %q has an all-zero id", value)
	}
	t.Sampled = flags[0]&1 == 1
	return t, nil
}

// TraceParentFromEnv continues the trace in $TRACEPARENT (the variable OpenTelemetry
// uses to hand a trace to a child process) or, when it is unset, starts a new one.
func TraceParentFromEnv() (TraceParent, error) {
	if value := os.Getenv("TRACEPARENT"); value != "" {
		return ParseTraceParent(value)
	}
	return NewTraceParent()
}

// String is the header value.
func (t TraceParent) String() string {
	flags := "00"
	if t.Sampled {
		flags = "01"
	}
	return "00-" + hex.EncodeToString(t.TraceID[:]) + "-" + hex.EncodeToString(t.SpanID[:]) + "-" + flags
}

// TraceIDHex is the trace id as a tracing backend (Jaeger, Tempo, ...) looks it up.
func (t TraceParent) TraceIDHex() string { return hex.EncodeToString(t.TraceID[:]) }

// withTrace adds the header unless the call's context already carries one (an
// OpenTelemetry interceptor earlier in the chain, or the caller, knows better).
func (t TraceParent) withTrace(ctx context.Context) context.Context {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(TraceParentHeader)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, TraceParentHeader, t.String())
}

// UnaryInterceptor sends t with every unary call.
func (t TraceParent) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(t.withTrace(ctx), method, req, reply, cc, opts...)
	}
}

// StreamInterceptor sends t with every streaming call.
func (t TraceParent) StreamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(t.withTrace(ctx), desc, cc, method, opts...)
	}
}

// DialOptions makes every call on the connection carry t (pass them to Dial or DialSecure).
func (t TraceParent) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(t.UnaryInterceptor()),
		grpc.WithChainStreamInterceptor(t.StreamInterceptor()),
	}
}
