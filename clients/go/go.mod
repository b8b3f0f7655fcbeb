module github.com/voxcache/voxcache/clients/go

// For users with a module proxy. The versions are grpc-go v1.58.3's own dependency set
// (its go.mod says go 1.19; v1.58.3 carries the HTTP/2 rapid-reset mitigation). This
// client's unit and live tests and cmd/voxcache-say passed with Go 1.19 against exactly
// these sources (see README.md), so the module builds with Go 1.19 and later; Go's minimal
// version selection takes newer versions if your own go.mod asks for them. The stubs in
// voxcachev1/ (protoc 3.21.12, protoc-gen-go v1.28.1, protoc-gen-go-grpc 1.0 /
// SupportPackageIsVersion7) work with all of them.
//
// CI does not build in module mode: no module proxy is reachable there and Debian's
// grpc-go 1.33 sources cannot serve one, so clients/go/check.sh builds in GOPATH mode.
// No go.sum is committed: it could not be produced or verified offline. Run
// `go mod tidy` once (it writes go.sum from the module proxy and checksum database).
go 1.19

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20230711160842-782d3b101e98
	google.golang.org/grpc v1.58.3
	google.golang.org/protobuf v1.31.0
)

require (
	github.com/golang/protobuf v1.5.3 // indirect
	golang.org/x/net v0.12.0 // indirect
	golang.org/x/sys v0.10.0 // indirect
	golang.org/x/text v0.11.0 // indirect
)
