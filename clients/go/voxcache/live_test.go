package voxcache_test

// Tests against running services, addressed by $VOXCACHE_EMBEDDER,
// $VOXCACHE_SYNTHESIZER and $VOXCACHE_REFERENCE (a reference clip). Without them
// the tests skip on a laptop but fail under CI=true: a CI job that silently ran
// none of them would look green.

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/voxcache/voxcache/clients/go/voxcache"
	"github.com/voxcache/voxcache/clients/go/voxcachev1"
)

type live struct {
	embedder    voxcachev1.EmbedderClient
	synthesizer voxcachev1.SynthesizerClient
	embedConn   *grpc.ClientConn
	synthConn   *grpc.ClientConn
	reference   []byte
}

func connect(t *testing.T) *live {
	t.Helper()
	embedder, synthesizer, reference := os.Getenv("VOXCACHE_EMBEDDER"), os.Getenv("VOXCACHE_SYNTHESIZER"), os.Getenv("VOXCACHE_REFERENCE")
	if embedder == "" || synthesizer == "" || reference == "" {
		const msg = "live tests need VOXCACHE_EMBEDDER, VOXCACHE_SYNTHESIZER and VOXCACHE_REFERENCE"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	audio, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	l := &live{reference: audio}
	l.embedConn = dial(t, embedder)
	l.synthConn = dial(t, synthesizer)
	l.embedder = voxcachev1.NewEmbedderClient(l.embedConn)
	l.synthesizer = voxcachev1.NewSynthesizerClient(l.synthConn)
	return l
}

func dial(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := voxcache.DialSecure(ctx, target, voxcache.SecurityFromEnv()) // TLS when VOXCACHE_TLS_* are set
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLiveHealth(t *testing.T) {
	l := connect(t)
	if err := voxcache.CheckServing(deadline(t, 5*time.Second), l.embedConn, voxcache.EmbedderService); err != nil {
		t.Error(err)
	}
	if err := voxcache.CheckServing(deadline(t, 5*time.Second), l.synthConn, voxcache.SynthesizerService); err != nil {
		t.Error(err)
	}
}

func TestLiveSecondEmbedIsACacheHit(t *testing.T) {
	l := connect(t)
	request := &voxcachev1.EmbedRequest{Input: &voxcachev1.EmbedRequest_Audio{Audio: l.reference}}
	first, err := l.embedder.Embed(deadline(t, 30*time.Second), request)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.embedder.Embed(deadline(t, 30*time.Second), request)
	if err != nil {
		t.Fatal(err)
	}
	if !second.GetCacheHit() || second.GetTier() == voxcachev1.CacheTier_CACHE_TIER_COMPUTED {
		t.Errorf("second Embed: cache_hit=%v tier=%v, want a hit", second.GetCacheHit(), second.GetTier())
	}
	if a, b := first.GetConditioning().GetCacheKey(), second.GetConditioning().GetCacheKey(); a == "" || a != b {
		t.Errorf("cache keys %q and %q, want the same non-empty key", a, b)
	}
	a, err := voxcache.Speaker(first.GetConditioning())
	if err != nil {
		t.Fatal(err)
	}
	b, err := voxcache.Speaker(second.GetConditioning())
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 192 || len(b) != 192 {
		t.Fatalf("speaker vectors have %d and %d values, want 192", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("element %d differs between the computed and the cached vector: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestLiveRegisteredVoiceSpeaksAndDeletes(t *testing.T) {
	l := connect(t)
	// A name of our own: other clients may be using the same services.
	voiceID := fmt.Sprintf("go-live-test-%d", os.Getpid())
	_, err := l.embedder.RegisterVoice(deadline(t, 30*time.Second),
		&voxcachev1.RegisterVoiceRequest{VoiceId: voiceID, Audio: l.reference, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = l.embedder.DeleteVoice(ctx, &voxcachev1.DeleteVoiceRequest{VoiceId: voiceID})
		}
	})

	voices, err := l.embedder.ListVoices(deadline(t, 10*time.Second), &voxcachev1.ListVoicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasVoice(voices.GetVoices(), voiceID) {
		t.Errorf("ListVoices does not list %q", voiceID)
	}

	speech, err := l.synthesizer.Synthesize(deadline(t, 120*time.Second), &voxcachev1.SynthesizeRequest{
		Text:  "Testing the Go client.",
		Voice: &voxcachev1.SynthesizeRequest_VoiceId{VoiceId: voiceID},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Format left unspecified: the proto promises WAV.
	info, err := voxcache.ParseWAV(speech.GetAudio())
	if err != nil {
		t.Fatal(err)
	}
	if info.Channels != 1 || info.BitsPerSample != 16 || info.SampleRate != int(speech.GetSampleRate()) || info.DataBytes == 0 {
		t.Errorf("WAV %+v with response sample_rate %d, want non-empty 16-bit mono at that rate", info, speech.GetSampleRate())
	}

	if _, err := l.embedder.DeleteVoice(deadline(t, 10*time.Second), &voxcachev1.DeleteVoiceRequest{VoiceId: voiceID}); err != nil {
		t.Fatal(err)
	}
	deleted = true
	_, err = l.embedder.Embed(deadline(t, 10*time.Second), &voxcachev1.EmbedRequest{Input: &voxcachev1.EmbedRequest_VoiceId{VoiceId: voiceID}})
	if d := voxcache.Details(err); d.Code != codes.NotFound || d.Resource == nil || d.Resource.Name != voiceID {
		t.Errorf("Embed of a deleted voice: %v (resource %+v), want NotFound naming %q", err, d.Resource, voiceID)
	}
}

func TestLiveUnknownVoiceIsNotFoundWithItsResource(t *testing.T) {
	l := connect(t)
	_, err := l.embedder.Embed(deadline(t, 10*time.Second),
		&voxcachev1.EmbedRequest{Input: &voxcachev1.EmbedRequest_VoiceId{VoiceId: "no-such-voice"}})
	d := voxcache.Details(err)
	t.Logf("Embed(voice_id=no-such-voice): %+v, resource %+v", d, d.Resource)
	if d.Code != codes.NotFound {
		t.Fatalf("Embed of an unknown voice: %v, want NotFound", err)
	}
	if got := d.Fields(); !reflect.DeepEqual(got, []string{"voice_id"}) {
		t.Errorf("BadRequest fields %q, want [voice_id]", got)
	}
	if d.Resource == nil || d.Resource.Type != voxcache.VoiceResourceType || d.Resource.Name != "no-such-voice" {
		t.Errorf("ResourceInfo %+v, want type %q name %q", d.Resource, voxcache.VoiceResourceType, "no-such-voice")
	}
}

func TestLiveRejectsARequestWithoutAnInput(t *testing.T) {
	l := connect(t)
	_, err := l.embedder.Embed(deadline(t, 10*time.Second), &voxcachev1.EmbedRequest{})
	d := voxcache.Details(err)
	t.Logf("Embed({}): %+v", d)
	if d.Code != codes.InvalidArgument {
		t.Fatalf("Embed with neither audio nor voice_id: %v, want InvalidArgument", err)
	}
	// An empty oneof names every member.
	if got := d.Fields(); !reflect.DeepEqual(got, []string{"audio", "voice_id"}) {
		t.Errorf("BadRequest fields %q, want [audio voice_id]", got)
	}
	if d.Resource != nil {
		t.Errorf("ResourceInfo %+v on a request without input, want none", d.Resource)
	}
}

func hasVoice(voices []*voxcachev1.Voice, id string) bool {
	for _, v := range voices {
		if v.GetVoiceId() == id {
			return true
		}
	}
	return false
}
