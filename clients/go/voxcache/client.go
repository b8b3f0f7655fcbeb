package voxcache

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/voxcache/voxcache/clients/go/voxcachev1"
)

// Fully qualified service names, as the servers register them with grpc.health.v1.
const (
	EmbedderService    = "voxcache.v1.Embedder"
	SynthesizerService = "voxcache.v1.Synthesizer"
)

// MaxMessageBytes matches the servers and the Python SDK: conditioning bundles of
// richer encoders run to several MB and audio uploads to 16 MB, well past gRPC's
// 4 MB default.
const MaxMessageBytes = 64 * 1024 * 1024

// Dial opens a plaintext connection and waits until it is up or ctx ends, so an
// unreachable address fails here with a clear error instead of at the first RPC.
//
// grpc.WithInsecure and grpc.DialContext are what grpc-go 1.33 (the version CI
// builds against) offers; later releases keep them, deprecated in favour of
// insecure.NewCredentials and grpc.NewClient.
func Dial(ctx context.Context, target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return DialSecure(ctx, target, Security{}, opts...)
}

// DialSecure is Dial over TLS or mTLS and with a bearer token, as sec says
// (SecurityFromEnv reads them from the environment); a zero Security is plaintext.
func DialSecure(ctx context.Context, target string, sec Security, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	security, err := sec.DialOptions()
	if err != nil {
		return nil, err
	}
	base := append(security,
		grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
	)
	conn, err := grpc.DialContext(ctx, target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("voxcache: dial %s: %w", target, err)
	}
	return conn, nil
}

// CheckServing asks the standard health service whether service is SERVING.
func CheckServing(ctx context.Context, conn grpc.ClientConnInterface, service string) error {
	reply, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("voxcache: health of %s: %w", service, err)
	}
	if reply.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("voxcache: %s is %v", service, reply.GetStatus())
	}
	return nil
}

// SpeakerTensor is the name of the ECAPA speaker vector in Conditioning.tensors.
//
// Deprecated: use TensorSpeaker.
const SpeakerTensor = TensorSpeaker

// Speaker decodes the speaker vector (ECAPA: 192 float32 values, L2-normalised).
func Speaker(c *voxcachev1.Conditioning) ([]float32, error) {
	return TensorFloat32s(c, TensorSpeaker)
}
