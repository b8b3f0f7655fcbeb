package voxcache

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestTraceParentRoundTrip(t *testing.T) {
	const header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp, err := ParseTraceParent(header)
	if err != nil {
		t.Fatal(err)
	}
	if tp.String() != header || !tp.Sampled || tp.TraceIDHex() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("parsed %+v, printed %s", tp, tp)
	}
	fresh, err := NewTraceParent()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseTraceParent(fresh.String())
	if err != nil || again != fresh {
		t.Errorf("a new traceparent does not survive its own header: %v %v", fresh, err)
	}
}

func TestTraceParentRefusesMalformedHeaders(t *testing.T) {
	for _, bad := range []string{
		"",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // unknown version
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // all-zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // all-zero parent id
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
		"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", // not hex
	} {
		if _, err := ParseTraceParent(bad); err == nil {
			t.Errorf("ParseTraceParent(%q) accepted it", bad)
		}
	}
}

// A real gRPC server on loopback records the traceparent each call arrives with.
func traceRecorder(t *testing.T) (string, <-chan []string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan []string, 4)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ interface{}, stream grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(stream.Context())
		seen <- md.Get(TraceParentHeader)
		return status.Error(codes.Unimplemented, "recorded")
	}))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), seen
}

func TestEveryCallCarriesTheTraceParent(t *testing.T) {
	address, seen := traceRecorder(t)
	tp, err := NewTraceParent()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, address, tp.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	_ = CheckServing(ctx, conn, EmbedderService) // answered UNIMPLEMENTED by the recorder
	if got := <-seen; len(got) != 1 || got[0] != tp.String() {
		t.Errorf("the server saw traceparent %q, want [%s]", got, tp)
	}
	// A traceparent the caller put on the context itself (an OpenTelemetry span's) wins.
	own := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_ = CheckServing(metadata.AppendToOutgoingContext(ctx, TraceParentHeader, own), conn, EmbedderService)
	if got := <-seen; len(got) != 1 || !strings.EqualFold(got[0], own) {
		t.Errorf("the server saw traceparent %q, want only the caller's [%s]", got, own)
	}
}
