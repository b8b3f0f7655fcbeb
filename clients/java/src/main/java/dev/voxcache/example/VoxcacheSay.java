package dev.voxcache.example;

import com.google.protobuf.ByteString;
import dev.voxcache.client.ErrorDetails;
import dev.voxcache.client.Tensors;
import dev.voxcache.client.TraceParent;
import dev.voxcache.client.VoxcacheErrors;
import dev.voxcache.client.Wav;
import dev.voxcache.v1.AudioFormat;
import dev.voxcache.v1.CacheTier;
import dev.voxcache.v1.EmbedRequest;
import dev.voxcache.v1.EmbedResponse;
import dev.voxcache.v1.EmbedderGrpc;
import dev.voxcache.v1.RegisterVoiceRequest;
import dev.voxcache.v1.SynthesisTimings;
import dev.voxcache.v1.SynthesizeRequest;
import dev.voxcache.v1.SynthesizeResponse;
import dev.voxcache.v1.SynthesizerGrpc;
import dev.voxcache.v1.Tensor;
import dev.voxcache.v1.Timings;
import dev.voxcache.v1.Voice;
import dev.voxcache.v1.VoiceSelection;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Exercises both voxcache services end to end and checks what comes back, so it doubles as a
 * smoke test (the Java twin of the Go client's cmd/voxcache-say):
 *
 * <pre>
 * VoxcacheSay --reference ref.wav --out hello.wav --text "Hello there."
 * </pre>
 *
 * <p>It health-checks both services (grpc.health.v1), embeds the reference clip twice, provokes
 * two refusals and decodes them ({@link VoxcacheErrors#details}), registers the clip as a voice
 * (overwrite=true), speaks the text in that voice and writes the WAV. It exits 1 unless both
 * services are SERVING, the speaker vector has 192 float32 values, the second Embed is a cache
 * hit, Embed of voice "no-such-voice" is NOT_FOUND with a BadRequest naming voice_id and a
 * ResourceInfo naming the voice, Embed without input is INVALID_ARGUMENT naming audio and
 * voice_id, and the file written is a WAV whose RIFF sizes match its length.
 *
 * <p>Over TLS: set VOXCACHE_TLS_CA (and, for mTLS, VOXCACHE_TLS_CLIENT_CERT and
 * VOXCACHE_TLS_CLIENT_KEY); a bearer token: VOXCACHE_TOKEN.
 */
public final class VoxcacheSay {
  private static final int SPEAKER_DIMS = 192; // ECAPA
  /** A voice nobody registers: asking for it shows how a refusal reads. */
  private static final String UNKNOWN_VOICE = "no-such-voice";
  /** Conditioning bundles of richer encoders run to several MB, past gRPC's 4 MB default. */
  private static final int MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
  /** Embedding a clip on CPU takes well under a second; this leaves room for a busy host. */
  private static final long EMBED_TIMEOUT_S = 30;
  /** The first Synthesize after start-up characterises the bundled voices (~10 s). */
  private static final long SYNTH_TIMEOUT_S = 120;
  /** The header a bearer token travels in. */
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final List<String> failures = new ArrayList<>();
  /** The call in progress, to name it when it throws. */
  private String step = "start";

  private VoxcacheSay() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> opts = parseArgs(args);
    if (opts.get("reference").isEmpty()) {
      System.err.println("VoxcacheSay: --reference (or $VOXCACHE_REFERENCE) is required");
      System.exit(2);
    }
    VoxcacheSay say = new VoxcacheSay();
    // One trace for the whole run: $TRACEPARENT's, or a new one; every call carries it.
    TraceParent trace = TraceParent.fromEnv();
    System.out.println("trace    " + trace.traceId());
    ManagedChannel embedChannel = channel(opts.get("embedder"), trace);
    ManagedChannel synthChannel = channel(opts.get("synthesizer"), trace);
    try {
      say.run(embedChannel, synthChannel, opts);
    } catch (StatusRuntimeException e) {
      say.failures.add(say.step + ": " + describe(e));
    } catch (IOException | IllegalArgumentException e) {
      say.failures.add(say.step + ": " + e);
    } finally {
      embedChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      synthChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (String failure : say.failures) {
      System.out.println("FAIL: " + failure);
    }
    if (!say.failures.isEmpty()) {
      System.exit(1);
    }
    System.out.println("VoxcacheSay: all checks passed");
  }

  private void check(boolean ok, String format, Object... args) {
    if (!ok) {
      failures.add(String.format(format, args));
    }
  }

  private void run(ManagedChannel embedChannel, ManagedChannel synthChannel, Map<String, String> opts)
      throws IOException {
    step = "reading the reference";
    byte[] audio = Files.readAllBytes(Paths.get(opts.get("reference")));
    ByteString audioBytes = ByteString.copyFrom(audio);

    checkServing(embedChannel, EmbedderGrpc.SERVICE_NAME);
    checkServing(synthChannel, SynthesizerGrpc.SERVICE_NAME);

    EmbedderGrpc.EmbedderBlockingStub embedder = EmbedderGrpc.newBlockingStub(embedChannel);
    // The same clip twice: the first call may compute (a miss) or be answered from an earlier
    // run's cache; the second must be a hit either way.
    EmbedRequest request = EmbedRequest.newBuilder().setAudio(audioBytes).build();
    float[][] vectors = new float[2][];
    for (int i = 0; i < 2; i++) {
      step = "Embed #" + (i + 1);
      EmbedResponse reply = embedder.withDeadlineAfter(EMBED_TIMEOUT_S, TimeUnit.SECONDS).embed(request);
      // getTensorsMap() is keyed by the Tensors.* names; Tensors.floats widens float16 to float.
      vectors[i] = Tensors.floats(reply.getConditioning(), Tensors.SPEAKER);
      if (i == 0) {
        Tensor tensor = reply.getConditioning().getTensorsMap().get(Tensors.SPEAKER);
        System.out.printf("tensor   \"%s\" %s %s from encoder \"%s\"%n", Tensors.SPEAKER, tensor.getDtype(),
            tensor.getShapeList(), reply.getConditioning().getEncoder());
      }
      Timings t = reply.getTimings();
      System.out.printf("embed #%d %-4s tier=%-8s total=%7.2fms cache=%.2fms decode=%.2fms extract=%.2fms%n",
          i + 1, reply.getCacheHit() ? "hit" : "miss", tierName(reply.getTier()),
          t.getTotalMs(), t.getCacheMs(), t.getDecodeMs(), t.getExtractMs());
      if (i == 1) {
        check(reply.getCacheHit(), "second Embed of the same clip was not a cache hit (tier %s)", reply.getTier());
      }
    }
    double norm = l2(vectors[0]);
    System.out.printf("vector   %d float32, L2 norm %.4f%n", vectors[0].length, norm);
    check(vectors[0].length == SPEAKER_DIMS, "speaker vector has %d values, want %d", vectors[0].length, SPEAKER_DIMS);
    check(Math.abs(norm - 1) < 1e-3, "speaker vector L2 norm %.4f, want 1 (L2-normalised)", norm);
    check(Arrays.equals(vectors[0], vectors[1]), "the cache hit returned a different vector than the first call");

    // Two refusals, each decoded in one call: code, message, BadRequest fields, ResourceInfo.
    step = "Embed of voice " + UNKNOWN_VOICE;
    ErrorDetails unknown = refusal(embedder, EmbedRequest.newBuilder().setVoiceId(UNKNOWN_VOICE).build());
    check(unknown.code() == Status.Code.NOT_FOUND, "%s: %s, want NOT_FOUND", step, unknown.code());
    check(unknown.fields().equals(Arrays.asList("voice_id")), "%s: BadRequest fields %s, want [voice_id]", step,
        unknown.fields());
    check(unknown.resourceType().equals(VoxcacheErrors.VOICE_RESOURCE_TYPE) && unknown.resourceName().equals(UNKNOWN_VOICE),
        "%s: ResourceInfo '%s' '%s', want '%s' '%s'", step, unknown.resourceType(), unknown.resourceName(),
        VoxcacheErrors.VOICE_RESOURCE_TYPE, UNKNOWN_VOICE);
    step = "Embed without input";
    ErrorDetails empty = refusal(embedder, EmbedRequest.getDefaultInstance());
    check(empty.code() == Status.Code.INVALID_ARGUMENT, "%s: %s, want INVALID_ARGUMENT", step, empty.code());
    // An empty oneof names every member.
    check(empty.fields().equals(Arrays.asList("audio", "voice_id")), "%s: BadRequest fields %s, want [audio, voice_id]",
        step, empty.fields());
    check(!empty.hasResource(), "%s: ResourceInfo '%s' '%s', want none", step, empty.resourceType(), empty.resourceName());

    String voiceId = opts.get("voice-id");
    step = "RegisterVoice " + voiceId;
    Voice voice = embedder.withDeadlineAfter(EMBED_TIMEOUT_S, TimeUnit.SECONDS)
        .registerVoice(RegisterVoiceRequest.newBuilder()
            .setVoiceId(voiceId).setAudio(audioBytes).setOverwrite(true).build())
        .getVoice();
    System.out.printf("voice    \"%s\" registered: %.2f s of audio, sha256 %.12s..., encoders %s%n",
        voice.getVoiceId(), voice.getDurationS(), voice.getAudioSha256(), voice.getEncodersList());
    check(voice.getVoiceId().equals(voiceId), "RegisterVoice answered for voice '%s', want '%s'", voice.getVoiceId(), voiceId);

    step = "Synthesize";
    SynthesizeResponse speech = SynthesizerGrpc.newBlockingStub(synthChannel)
        .withDeadlineAfter(SYNTH_TIMEOUT_S, TimeUnit.SECONDS)
        .synthesize(SynthesizeRequest.newBuilder()
            .setText(opts.get("text"))
            .setVoiceId(voiceId)
            .setFormat(AudioFormat.AUDIO_FORMAT_WAV)
            .build());
    VoiceSelection sel = speech.getSelection();
    SynthesisTimings st = speech.getTimings();
    System.out.printf(
        "speech   backend=%s voice=%s similarity=%.3f conditioning-hit=%b embed=%.1fms synthesis=%.1fms total=%.1fms%n",
        sel.getBackend(), sel.getBackendVoice(), sel.getSimilarity(), sel.getConditioningCacheHit(),
        st.getEmbedMs(), st.getSynthesisMs(), st.getTotalMs());

    // Check the file as written, not the bytes in memory: that is what a user plays.
    step = "writing the WAV";
    Path out = Paths.get(opts.get("out"));
    Files.write(out, speech.getAudio().toByteArray());
    byte[] written = Files.readAllBytes(out);
    try {
      Wav.Info info = Wav.parse(written);
      System.out.printf("wav      %s: %d bytes, %d Hz, %d-bit, %d channel(s), %.2f s%n",
          out, written.length, info.sampleRate, info.bitsPerSample, info.channels, info.durationSeconds());
      check(info.sampleRate == speech.getSampleRate(),
          "WAV header says %d Hz, the response %d Hz", info.sampleRate, speech.getSampleRate());
      check(info.dataBytes > 0, "WAV has no samples");
    } catch (IllegalArgumentException e) {
      check(false, "%s: %s", out, e.getMessage());
    }
  }

  /** The decoded refusal of a request that must fail (OK when it does not). */
  private ErrorDetails refusal(EmbedderGrpc.EmbedderBlockingStub embedder, EmbedRequest request) {
    ErrorDetails details;
    try {
      embedder.withDeadlineAfter(EMBED_TIMEOUT_S, TimeUnit.SECONDS).embed(request);
      details = VoxcacheErrors.details(Status.OK.asRuntimeException());
    } catch (StatusRuntimeException e) {
      details = VoxcacheErrors.details(e);
    }
    System.out.printf("refusal  %s%n", details);
    return details;
  }

  private void checkServing(ManagedChannel channel, String service) {
    try {
      HealthCheckResponse.ServingStatus status = HealthGrpc.newBlockingStub(channel)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService(service).build())
          .getStatus();
      check(status == HealthCheckResponse.ServingStatus.SERVING, "%s is %s", service, status);
      System.out.printf("health   %-23s %s%n", service, status);
    } catch (StatusRuntimeException e) {
      check(false, "health of %s: %s", service, describe(e));
    }
  }

  /** The status code and message, without the transport's stack trace. */
  private static String describe(StatusRuntimeException e) {
    String description = e.getStatus().getDescription();
    return e.getStatus().getCode() + (description == null || description.isEmpty() ? "" : ": " + description);
  }

  /**
   * A channel over TLS when VOXCACHE_TLS_CA is set (mTLS when VOXCACHE_TLS_CLIENT_CERT and
   * VOXCACHE_TLS_CLIENT_KEY are set too), plaintext otherwise; with VOXCACHE_TOKEN every call
   * carries "authorization: Bearer &lt;token&gt;". The variables are the Python CLI's.
   */
  private static ManagedChannel channel(String target, TraceParent trace) throws IOException {
    // Transport-agnostic: grpc-netty-shaded (Maven) or grpc-netty (Debian jars) is found at run time.
    ManagedChannelBuilder<?> builder =
        Grpc.newChannelBuilder(target, credentials())
            .maxInboundMessageSize(MAX_MESSAGE_BYTES)
            .intercept(trace); // the run's one W3C traceparent on every call
    String token = envOr("VOXCACHE_TOKEN", "");
    if (!token.isEmpty()) {
      builder.intercept(bearer(token));
    }
    return builder.build();
  }

  /** Adds "authorization: Bearer &lt;token&gt;" to every call made through the channel. */
  private static ClientInterceptor bearer(String token) {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(
          MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new ForwardingClientCall.SimpleForwardingClientCall<Q, R>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            headers.put(AUTHORIZATION, "Bearer " + token);
            super.start(listener, headers);
          }
        };
      }
    };
  }

  private static ChannelCredentials credentials() throws IOException {
    String ca = envOr("VOXCACHE_TLS_CA", "");
    String cert = envOr("VOXCACHE_TLS_CLIENT_CERT", "");
    String key = envOr("VOXCACHE_TLS_CLIENT_KEY", "");
    if (ca.isEmpty() && cert.isEmpty() && key.isEmpty()) {
      return InsecureChannelCredentials.create();
    }
    TlsChannelCredentials.Builder tls = TlsChannelCredentials.newBuilder();
    if (!ca.isEmpty()) {
      tls.trustManager(new File(ca));
    }
    if (cert.isEmpty() != key.isEmpty()) {
      throw new IOException("VOXCACHE_TLS_CLIENT_CERT and VOXCACHE_TLS_CLIENT_KEY go together (mTLS takes both)");
    }
    if (!cert.isEmpty()) {
      tls.keyManager(new File(cert), new File(key));
    }
    return tls.build();
  }

  /** --name value pairs over defaults taken from the environment. */
  private static Map<String, String> parseArgs(String[] args) {
    Map<String, String> opts = new LinkedHashMap<>(); // ordered for the usage line
    opts.put("embedder", envOr("VOXCACHE_EMBEDDER", "127.0.0.1:50051"));
    opts.put("synthesizer", envOr("VOXCACHE_SYNTHESIZER", "127.0.0.1:50052"));
    opts.put("reference", envOr("VOXCACHE_REFERENCE", ""));
    opts.put("voice-id", "java-example");
    opts.put("text", "Hello from the Java client of voxcache.");
    opts.put("out", "voxcache-say.wav");
    for (int i = 0; i < args.length; i += 2) {
      String name = args[i].startsWith("--") ? args[i].substring(2) : "";
      if (!opts.containsKey(name) || i + 1 == args.length) {
        System.err.println("usage: VoxcacheSay [--" + String.join(" V] [--", opts.keySet()) + " V]");
        System.exit(2);
      }
      opts.put(name, args[i + 1]);
    }
    return opts;
  }

  private static String envOr(String key, String fallback) {
    String value = System.getenv(key);
    return value == null || value.isEmpty() ? fallback : value;
  }

  private static String tierName(CacheTier tier) {
    switch (tier) {
      case CACHE_TIER_LOCAL:
        return "local";
      case CACHE_TIER_REDIS:
        return "redis";
      case CACHE_TIER_COMPUTED:
        return "computed";
      default:
        return tier.toString();
    }
  }

  private static double l2(float[] v) {
    double sum = 0;
    for (float x : v) {
      sum += (double) x * x;
    }
    return Math.sqrt(sum);
  }
}
