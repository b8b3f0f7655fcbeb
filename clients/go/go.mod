module github.com/voxcache/voxcache/clients/go

// Minimum versions: the ones CI builds and tests against (Debian 12's grpc-go and
// protobuf-go, offline). The generated stubs in voxcachev1/ come from protoc 3.21.12,
// protoc-gen-go v1.28.1 and protoc-gen-go-grpc 1.0 (grpc.SupportPackageIsVersion7),
// which later grpc-go releases still accept, so a newer version picked by your own
// go.mod works too. No go.sum is committed: the main module's go.sum is the one Go
// uses; run `go mod tidy` once when building inside this directory.
go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
