// Command voxcache-say exercises both voxcache services end to end and checks
// what comes back, so it doubles as a smoke test:
//
//	voxcache-say -reference ref.wav -out hello.wav -text "Hello there."
//
// It health-checks the Embedder and the Synthesizer (grpc.health.v1), embeds the
// reference clip twice, provokes two refusals and decodes them (voxcache.Details),
// registers the clip as a voice (overwrite=true), speaks the text in that voice and
// writes the WAV. It exits 1 unless both services are SERVING, the speaker vector has
// 192 float32 values, the second Embed is a cache hit, Embed of voice "no-such-voice"
// is NOT_FOUND with a BadRequest naming voice_id and a ResourceInfo naming the voice,
// Embed without input is INVALID_ARGUMENT naming audio and voice_id, and the file
// written is a WAV whose RIFF sizes match its length.
//
// Over TLS: set VOXCACHE_TLS_CA (and, for mTLS, VOXCACHE_TLS_CLIENT_CERT and
// VOXCACHE_TLS_CLIENT_KEY); a bearer token: VOXCACHE_TOKEN.
//
// Tracing: every call carries one W3C traceparent, the one in $TRACEPARENT or a new
// one, and the trace id is printed first; with OpenTelemetry on in the services, the
// whole run is that one trace, Synthesizer and Embedder spans included.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/voxcache/voxcache/clients/go/voxcache"
	"github.com/voxcache/voxcache/clients/go/voxcachev1"
)

const (
	speakerDims = 192 // ECAPA
	// A voice nobody registers: asking for it shows how a refusal reads.
	unknownVoice = "no-such-voice"
	// Embedding a clip on CPU takes well under a second; this leaves room for a busy host.
	embedTimeout = 30 * time.Second
	// The first Synthesize after start-up characterises the bundled voices (~10 s).
	synthTimeout = 120 * time.Second
)

type options struct {
	embedder, synthesizer, reference, voiceID, text, out string
}

func main() {
	o := options{}
	flag.StringVar(&o.embedder, "embedder", envOr("VOXCACHE_EMBEDDER", "127.0.0.1:50051"), "Embedder address ($VOXCACHE_EMBEDDER)")
	flag.StringVar(&o.synthesizer, "synthesizer", envOr("VOXCACHE_SYNTHESIZER", "127.0.0.1:50052"), "Synthesizer address ($VOXCACHE_SYNTHESIZER)")
	flag.StringVar(&o.reference, "reference", os.Getenv("VOXCACHE_REFERENCE"), "reference clip, WAV/FLAC/OGG 1-30 s ($VOXCACHE_REFERENCE)")
	flag.StringVar(&o.voiceID, "voice-id", "go-example", "name to register the reference under (replaced if it exists)")
	flag.StringVar(&o.text, "text", "Hello from the Go client of voxcache.", "text to speak")
	flag.StringVar(&o.out, "out", "voxcache-say.wav", "WAV file to write")
	flag.Parse()
	if o.reference == "" {
		fmt.Fprintln(os.Stderr, "voxcache-say: -reference (or $VOXCACHE_REFERENCE) is required")
		os.Exit(2)
	}
	failures, err := run(o)
	for _, f := range failures {
		fmt.Println("FAIL:", f)
	}
	if err != nil {
		fmt.Println("FAIL:", err)
	}
	if err != nil || len(failures) > 0 {
		os.Exit(1)
	}
	fmt.Println("voxcache-say: all checks passed")
}

// run returns the checks that failed; err is for calls that could not be made at all.
func run(o options) (failures []string, err error) {
	check := func(ok bool, format string, args ...interface{}) {
		if !ok {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	audio, err := os.ReadFile(o.reference)
	if err != nil {
		return nil, err
	}

	trace, err := voxcache.TraceParentFromEnv()
	if err != nil {
		return nil, err
	}
	fmt.Printf("trace    %s\n", trace.TraceIDHex())
	embedConn, err := dial(o.embedder, trace)
	if err != nil {
		return nil, err
	}
	defer embedConn.Close()
	synthConn, err := dial(o.synthesizer, trace)
	if err != nil {
		return nil, err
	}
	defer synthConn.Close()

	for _, target := range []struct {
		conn    *grpc.ClientConn
		service string
	}{{embedConn, voxcache.EmbedderService}, {synthConn, voxcache.SynthesizerService}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := voxcache.CheckServing(ctx, target.conn, target.service)
		cancel()
		check(err == nil, "%v", err)
		if err == nil {
			fmt.Printf("health   %-23s SERVING\n", target.service)
		}
	}

	embedder := voxcachev1.NewEmbedderClient(embedConn)
	// The same clip twice: the first call may compute (a miss) or be answered from an
	// earlier run's cache; the second must be a hit either way.
	var vectors [2][]float32
	for i := range vectors {
		ctx, cancel := context.WithTimeout(context.Background(), embedTimeout)
		reply, err := embedder.Embed(ctx, &voxcachev1.EmbedRequest{Input: &voxcachev1.EmbedRequest_Audio{Audio: audio}})
		cancel()
		if err != nil {
			return failures, fmt.Errorf("Embed #%d: %w", i+1, err)
		}
		// Conditioning.tensors is keyed by the voxcache.Tensor* names; Speaker is
		// TensorFloat32s(c, voxcache.TensorSpeaker), float16 widened to float32.
		tensor := reply.GetConditioning().GetTensors()[voxcache.TensorSpeaker]
		vectors[i], err = voxcache.TensorFloat32s(reply.GetConditioning(), voxcache.TensorSpeaker)
		if err != nil {
			return failures, fmt.Errorf("Embed #%d: %w", i+1, err)
		}
		if i == 0 {
			fmt.Printf("tensor   %q %v %v from encoder %q\n", voxcache.TensorSpeaker, tensor.GetDtype(), tensor.GetShape(),
				reply.GetConditioning().GetEncoder())
		}
		t := reply.GetTimings()
		fmt.Printf("embed #%d %-4s tier=%-8s total=%7.2fms cache=%.2fms decode=%.2fms extract=%.2fms\n",
			i+1, hitOrMiss(reply.GetCacheHit()), tierName(reply.GetTier()),
			t.GetTotalMs(), t.GetCacheMs(), t.GetDecodeMs(), t.GetExtractMs())
		if i == 1 {
			check(reply.GetCacheHit(), "second Embed of the same clip was not a cache hit (tier %v)", reply.GetTier())
		}
	}
	norm := l2(vectors[0])
	fmt.Printf("vector   %d float32, L2 norm %.4f\n", len(vectors[0]), norm)
	check(len(vectors[0]) == speakerDims, "speaker vector has %d values, want %d", len(vectors[0]), speakerDims)
	check(math.Abs(norm-1) < 1e-3, "speaker vector L2 norm %.4f, want 1 (L2-normalised)", norm)
	check(equal(vectors[0], vectors[1]), "the cache hit returned a different vector than the first call")

	// Two refusals, each decoded in one call: code, message, BadRequest fields, ResourceInfo.
	unknown := refusal(embedder, &voxcachev1.EmbedRequest{Input: &voxcachev1.EmbedRequest_VoiceId{VoiceId: unknownVoice}})
	step := fmt.Sprintf("Embed of voice %q", unknownVoice)
	check(unknown.Code == codes.NotFound, "%s: %v, want NotFound", step, unknown.Code)
	check(reflect.DeepEqual(unknown.Fields(), []string{"voice_id"}), "%s: BadRequest fields %q, want [voice_id]", step, unknown.Fields())
	check(unknown.Resource != nil && unknown.Resource.Type == voxcache.VoiceResourceType && unknown.Resource.Name == unknownVoice,
		"%s: ResourceInfo %+v, want %s %s", step, unknown.Resource, voxcache.VoiceResourceType, unknownVoice)
	empty := refusal(embedder, &voxcachev1.EmbedRequest{})
	step = "Embed without input"
	check(empty.Code == codes.InvalidArgument, "%s: %v, want InvalidArgument", step, empty.Code)
	// An empty oneof names every member.
	check(reflect.DeepEqual(empty.Fields(), []string{"audio", "voice_id"}), "%s: BadRequest fields %q, want [audio voice_id]", step, empty.Fields())
	check(empty.Resource == nil, "%s: ResourceInfo %+v, want none", step, empty.Resource)

	ctx, cancel := context.WithTimeout(context.Background(), embedTimeout)
	registered, err := embedder.RegisterVoice(ctx, &voxcachev1.RegisterVoiceRequest{VoiceId: o.voiceID, Audio: audio, Overwrite: true})
	cancel()
	if err != nil {
		return failures, fmt.Errorf("RegisterVoice %q: %w", o.voiceID, err)
	}
	v := registered.GetVoice()
	fmt.Printf("voice    %q registered: %.2f s of audio, sha256 %.12s..., encoders %v\n",
		v.GetVoiceId(), v.GetDurationS(), v.GetAudioSha256(), v.GetEncoders())
	check(v.GetVoiceId() == o.voiceID, "RegisterVoice answered for voice %q, want %q", v.GetVoiceId(), o.voiceID)

	ctx, cancel = context.WithTimeout(context.Background(), synthTimeout)
	speech, err := voxcachev1.NewSynthesizerClient(synthConn).Synthesize(ctx, &voxcachev1.SynthesizeRequest{
		Text:   o.text,
		Voice:  &voxcachev1.SynthesizeRequest_VoiceId{VoiceId: o.voiceID},
		Format: voxcachev1.AudioFormat_AUDIO_FORMAT_WAV,
	})
	cancel()
	if err != nil {
		return failures, fmt.Errorf("Synthesize: %w", err)
	}
	sel, st := speech.GetSelection(), speech.GetTimings()
	fmt.Printf("speech   backend=%s voice=%s similarity=%.3f conditioning-hit=%v embed=%.1fms synthesis=%.1fms total=%.1fms\n",
		sel.GetBackend(), sel.GetBackendVoice(), sel.GetSimilarity(), sel.GetConditioningCacheHit(),
		st.GetEmbedMs(), st.GetSynthesisMs(), st.GetTotalMs())

	// Check the file as written, not the bytes in memory: that is what a user plays.
	if err := os.WriteFile(o.out, speech.GetAudio(), 0o644); err != nil {
		return failures, err
	}
	written, err := os.ReadFile(o.out)
	if err != nil {
		return failures, err
	}
	info, err := voxcache.ParseWAV(written)
	check(err == nil, "%s: %v", o.out, err)
	if err == nil {
		fmt.Printf("wav      %s: %d bytes, %d Hz, %d-bit, %d channel(s), %.2f s\n",
			o.out, len(written), info.SampleRate, info.BitsPerSample, info.Channels, info.Duration().Seconds())
		check(info.SampleRate == int(speech.GetSampleRate()),
			"WAV header says %d Hz, the response %d Hz", info.SampleRate, speech.GetSampleRate())
		check(info.DataBytes > 0, "WAV has no samples")
	}
	return failures, nil
}

// refusal makes a call that must fail and decodes its status (Code OK if it succeeds).
func refusal(embedder voxcachev1.EmbedderClient, request *voxcachev1.EmbedRequest) voxcache.ErrorDetails {
	ctx, cancel := context.WithTimeout(context.Background(), embedTimeout)
	defer cancel()
	_, err := embedder.Embed(ctx, request)
	d := voxcache.Details(err)
	resource := ""
	if r := d.Resource; r != nil {
		resource = " resource=" + r.Type + " " + r.Name
	}
	fmt.Printf("refusal  %v %q fields=%q%s\n", d.Code, d.Message, d.Fields(), resource)
	return d
}

func dial(target string, trace voxcache.TraceParent) (*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// TLS/mTLS and the token come from VOXCACHE_TLS_CA, VOXCACHE_TLS_CLIENT_CERT,
	// VOXCACHE_TLS_CLIENT_KEY and VOXCACHE_TOKEN; none set: plaintext, no token.
	return voxcache.DialSecure(ctx, target, voxcache.SecurityFromEnv(), trace.DialOptions()...)
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func hitOrMiss(hit bool) string {
	if hit {
		return "hit"
	}
	return "miss"
}

// tierName turns CACHE_TIER_REDIS into "redis".
func tierName(t voxcachev1.CacheTier) string {
	switch t {
	case voxcachev1.CacheTier_CACHE_TIER_LOCAL:
		return "local"
	case voxcachev1.CacheTier_CACHE_TIER_REDIS:
		return "redis"
	case voxcachev1.CacheTier_CACHE_TIER_COMPUTED:
		return "computed"
	}
	return t.String()
}

func l2(v []float32) float64 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum)
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
