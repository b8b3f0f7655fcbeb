package voxcache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Security says how to reach a voxcache service: TLS (CA set), mTLS (CA plus a client
// certificate and key) and a bearer token, each optional. The zero value is plaintext
// without a token, as Dial uses.
type Security struct {
	CA, Cert, Key string // PEM file paths
	Token         string // sent as "authorization: Bearer <Token>" on every call
}

// SecurityFromEnv reads the variables the Python CLI reads too: VOXCACHE_TLS_CA,
// VOXCACHE_TLS_CLIENT_CERT, VOXCACHE_TLS_CLIENT_KEY and VOXCACHE_TOKEN.
func SecurityFromEnv() Security {
	return Security{
		CA:    os.Getenv("VOXCACHE_TLS_CA"),
		Cert:  os.Getenv("VOXCACHE_TLS_CLIENT_CERT"),
		Key:   os.Getenv("VOXCACHE_TLS_CLIENT_KEY"),
		Token: os.Getenv("VOXCACHE_TOKEN"),
	}
}

// TLS reports whether the connection is to use TLS.
func (s Security) TLS() bool { return s.CA != "" || s.Cert != "" || s.Key != "" }

// DialOptions are the transport credentials (plaintext unless TLS) and the token. A file
// that cannot be used is an error naming it, before any connection is attempted.
func (s Security) DialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if s.TLS() {
		config, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if s.Token != "" {
		if strings.ContainsAny(s.Token, " \t\r\n") {
			return nil, fmt.Errorf("voxcache: the token has whitespace in it; gRPC metadata cannot carry it (not shown: it is a secret)")
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: s.Token, requireTLS: false}))
	}
	return opts, nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("voxcache: CA %s: %w", s.CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("voxcache: CA %s: no PEM certificate in it", s.CA)
		}
		config.RootCAs = pool
	}
	if (s.Cert == "") != (s.Key == "") {
		return nil, fmt.Errorf("voxcache: a client certificate needs its key and a key its certificate (mTLS takes both)")
	}
	if s.Cert != "" {
		pair, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			return nil, fmt.Errorf("voxcache: client certificate %s with key %s: %w", s.Cert, s.Key, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// bearer sends the token on every call, over TLS or plaintext (a local stack, a sidecar
// that terminates TLS): requireTLS false is deliberate, and the caller's choice.
type bearer struct {
	token      string
	requireTLS bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.requireTLS }
