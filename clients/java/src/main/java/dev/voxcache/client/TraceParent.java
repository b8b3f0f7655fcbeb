package dev.voxcache.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A W3C traceparent (version 00) sent with every call, so the services continue one trace.
 *
 * <p>The Synthesizer and the Embedder, with OpenTelemetry on, make their server spans children
 * of the span this header names, and the Synthesizer forwards it to the Embedder. This is the
 * hand-made half of OpenTelemetry: Debian packages neither the OpenTelemetry Java SDK nor its
 * gRPC instrumentation, so the offline build passes a header instead of opening spans of its
 * own. An application with OpenTelemetry adds {@code io.opentelemetry.instrumentation:
 * opentelemetry-grpc-1.6} ({@code GrpcTelemetry.create(openTelemetry).newClientInterceptor()})
 * or the Java agent, and leaves this out (clients/java/README.md).
 */
public final class TraceParent implements ClientInterceptor {
  /** The header, as gRPC metadata. */
  public static final Metadata.Key<String> HEADER =
      Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER);

  private static final Pattern FORMAT = Pattern.compile("00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}");
  private static final SecureRandom RANDOM = new SecureRandom();

  private final String value;

  private TraceParent(String value) {
    this.value = value;
  }

  /** Starts a new sampled trace with random ids. */
  public static TraceParent generate() {
    return new TraceParent("00-" + randomHex(16) + "-" + randomHex(8) + "-01");
  }

  /**
   * Reads "00-&lt;32 hex&gt;-&lt;16 hex&gt;-&lt;2 hex&gt;"; all-zero ids are invalid, as the W3C spec says.
   *
   * @throws IllegalArgumentException naming the value when it is not a traceparent
   */
  public static TraceParent parse(String header) {
    String value = header.trim().toLowerCase(Locale.ROOT);
    if (!FORMAT.matcher(value).matches()
        || value.substring(3, 35).chars().allMatch(c -> c == '0')
        || value.substring(36, 52).chars().allMatch(c -> c == '0')) {
      throw new IllegalArgumentException(
          "traceparent \"" + header + "\" is not 00-<32 hex>-<16 hex>-<2 hex> with non-zero ids");
    }
    return new TraceParent(value);
  }

  /** Continues the trace in $TRACEPARENT (how OpenTelemetry hands a trace to a child process), else a new one. */
  public static TraceParent fromEnv() {
    String header = System.getenv("TRACEPARENT");
    return header == null || header.isEmpty() ? generate() : parse(header);
  }

  /** The trace id, as a tracing backend (Jaeger, Tempo, ...) looks it up. */
  public String traceId() {
    return value.substring(3, 35);
  }

  /** The header value. */
  @Override
  public String toString() {
    return value;
  }

  /** Adds the header to a call unless it already carries one (the caller's own span wins). */
  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<Q, R>(next.newCall(method, options)) {
      @Override
      public void start(Listener<R> listener, Metadata headers) {
        if (!headers.containsKey(HEADER)) {
          headers.put(HEADER, value);
        }
        super.start(listener, headers);
      }
    };
  }

  private static String randomHex(int bytes) {
    byte[] raw = new byte[bytes];
    do {
      RANDOM.nextBytes(raw);
    } while (allZero(raw));
    StringBuilder hex = new StringBuilder(bytes * 2);
    for (byte b : raw) {
      hex.append(String.format("%02x", b));
    }
    return hex.toString();
  }

  private static boolean allZero(byte[] raw) {
    for (byte b : raw) {
      if (b != 0) {
        return false;
      }
    }
    return true;
  }
}
