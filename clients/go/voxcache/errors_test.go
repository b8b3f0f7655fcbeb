package voxcache

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// withDetails builds the error a client sees for a status carrying details; the details
// are packed into Any values exactly as on the wire.
func withDetails(t *testing.T, code codes.Code, msg string, details ...*errdetails.BadRequest) *status.Status {
	t.Helper()
	st := status.New(code, msg)
	for _, d := range details {
		var err error
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestDetailsOfAnEmptyOneof(t *testing.T) {
	st := withDetails(t, codes.InvalidArgument, "set exactly one of audio or voice_id",
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "audio", Description: "set exactly one of audio or voice_id"},
			{Field: "voice_id", Description: "set exactly one of audio or voice_id"},
		}})
	d := Details(st.Err())
	if d.Code != codes.InvalidArgument || d.Message != "set exactly one of audio or voice_id" {
		t.Errorf("code, message = %v, %q", d.Code, d.Message)
	}
	if got, want := d.Fields(), []string{"audio", "voice_id"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() = %q, want %q", got, want)
	}
	if d.FieldViolations[1].Description != "set exactly one of audio or voice_id" {
		t.Errorf("description = %q", d.FieldViolations[1].Description)
	}
	if !d.HasField("voice_id") || d.HasField("encoder") {
		t.Errorf("HasField: voice_id %v, encoder %v; want true, false", d.HasField("voice_id"), d.HasField("encoder"))
	}
	if d.Resource != nil {
		t.Errorf("Resource = %+v, want nil", d.Resource)
	}
}

func TestDetailsOfAnUnknownVoice(t *testing.T) {
	st, err := status.New(codes.NotFound, "voice 'no-such-voice' is not registered").WithDetails(
		&errdetails.ResourceInfo{ResourceType: VoiceResourceType, ResourceName: "no-such-voice", Description: "not registered"},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "voice_id"}}},
		// A second ResourceInfo does not replace the first.
		&errdetails.ResourceInfo{ResourceType: "other", ResourceName: "other"},
	)
	if err != nil {
		t.Fatal(err)
	}
	// Wrapped, as callers often do: the status is still found.
	d := Details(fmt.Errorf("embedding the narrator: %w", st.Err()))
	if d.Code != codes.NotFound || d.Message != "voice 'no-such-voice' is not registered" {
		t.Errorf("code, message = %v, %q", d.Code, d.Message)
	}
	want := ResourceInfo{Type: VoiceResourceType, Name: "no-such-voice", Description: "not registered"}
	if d.Resource == nil || *d.Resource != want {
		t.Errorf("Resource = %+v, want %+v", d.Resource, want)
	}
	if got := d.Fields(); !reflect.DeepEqual(got, []string{"voice_id"}) {
		t.Errorf("Fields() = %q, want [voice_id]", got)
	}
}

func TestDetailsConcatenatesBadRequests(t *testing.T) {
	one := func(field string) *errdetails.BadRequest {
		return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field}}}
	}
	// Between the two: a BadRequest that does not parse and a detail of another type,
	// both skipped.
	p := withDetails(t, codes.InvalidArgument, "two problems", one("text"), one("speed")).Proto()
	garbage := &anypb.Any{TypeUrl: "type.googleapis.com/google.rpc.BadRequest", Value: []byte{0xff, 0xff, 0xff}}
	other, err := status.New(codes.InvalidArgument, "").WithDetails(&errdetails.DebugInfo{Detail: "a stack trace"})
	if err != nil {
		t.Fatal(err)
	}
	p.Details = append([]*anypb.Any{p.Details[0], garbage, other.Proto().Details[0]}, p.Details[1:]...)
	d := Details(status.FromProto(p).Err())
	if got := d.Fields(); !reflect.DeepEqual(got, []string{"text", "speed"}) {
		t.Errorf("Fields() = %q, want [text speed]", got)
	}
	if d.Resource != nil {
		t.Errorf("Resource = %+v, want nil", d.Resource)
	}
}

func TestDetailsWithoutDetails(t *testing.T) {
	d := Details(status.Error(codes.Unavailable, "embedder unreachable"))
	if d.Code != codes.Unavailable || d.Message != "embedder unreachable" || d.FieldViolations != nil || d.Fields() != nil || d.Resource != nil {
		t.Errorf("Details = %+v", d)
	}
	if d := Details(nil); d.Code != codes.OK || d.Message != "" {
		t.Errorf("Details(nil) = %+v, want OK", d)
	}
	if d := Details(errors.New("disk full")); d.Code != codes.Unknown || d.Message != "disk full" {
		t.Errorf("Details(plain error) = %+v, want Unknown with its text", d)
	}
}
