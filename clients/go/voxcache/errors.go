package voxcache

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// VoiceResourceType is the ResourceInfo.resource_type of a registered voice, as the
// Embedder names it in NOT_FOUND and ALREADY_EXISTS errors.
const VoiceResourceType = "voxcache.v1.Voice"

// FieldViolation is one entry of a google.rpc.BadRequest detail: the request field at
// fault, as a path in the request message ("audio", "voice_id", "reference_audio", ...),
// and what is wrong with it.
type FieldViolation struct {
	Field       string
	Description string
}

// ResourceInfo is a google.rpc.ResourceInfo detail: the resource a NOT_FOUND or
// ALREADY_EXISTS error is about. For voices, Type is VoiceResourceType and Name is the
// voice id.
type ResourceInfo struct {
	Type        string
	Name        string
	Owner       string
	Description string
}

// ErrorDetails is what a failed call says, decoded from its google.rpc.Status.
type ErrorDetails struct {
	// Code is codes.OK for a nil error and codes.Unknown for an error that carries no
	// gRPC status.
	Code    codes.Code
	Message string
	// FieldViolations lists the google.rpc.BadRequest violations in the order the server
	// sent them; nil when the status has no BadRequest. An empty oneof names every one of
	// its members (Embed without input: "audio" and "voice_id").
	FieldViolations []FieldViolation
	// Resource is the google.rpc.ResourceInfo detail, or nil when there is none.
	Resource *ResourceInfo
}

// Fields returns the field paths of FieldViolations, in order.
func (d ErrorDetails) Fields() []string {
	if d.FieldViolations == nil {
		return nil
	}
	fields := make([]string, len(d.FieldViolations))
	for i, v := range d.FieldViolations {
		fields[i] = v.Field
	}
	return fields
}

// HasField reports whether a field violation names field.
func (d ErrorDetails) HasField(field string) bool {
	for _, v := range d.FieldViolations {
		if v.Field == field {
			return true
		}
	}
	return false
}

// Details decodes the status of an error returned by a voxcache call: its code, message,
// the fields of its google.rpc.BadRequest detail and its google.rpc.ResourceInfo:
//
//	d := voxcache.Details(err)
//	if d.Code == codes.NotFound && d.Resource != nil {
//		fmt.Println("no voice called", d.Resource.Name)
//	}
//
// err may be wrapped (fmt.Errorf("...: %w", err)): the first error in its chain that
// carries a gRPC status is read. Details that are neither BadRequest nor ResourceInfo,
// or that fail to decode, are skipped; several BadRequest details are concatenated and
// the first ResourceInfo wins.
func Details(err error) ErrorDetails {
	if err == nil {
		return ErrorDetails{Code: codes.OK}
	}
	var carrier interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &carrier) {
		return ErrorDetails{Code: codes.Unknown, Message: err.Error()}
	}
	st := carrier.GRPCStatus()
	d := ErrorDetails{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch m := detail.(type) {
		case *errdetails.BadRequest:
			for _, v := range m.GetFieldViolations() {
				d.FieldViolations = append(d.FieldViolations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.ResourceInfo:
			if d.Resource == nil {
				d.Resource = &ResourceInfo{
					Type:        m.GetResourceType(),
					Name:        m.GetResourceName(),
					Owner:       m.GetOwner(),
					Description: m.GetDescription(),
				}
			}
		}
	}
	return d
}
