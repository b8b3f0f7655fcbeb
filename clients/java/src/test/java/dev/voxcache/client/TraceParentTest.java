package dev.voxcache.client;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;

import dev.voxcache.v1.EmbedRequest;
import dev.voxcache.v1.EmbedderGrpc;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.MetadataUtils;
import java.util.ArrayList;
import java.util.List;
import org.junit.Test;

public class TraceParentTest {
  private static final String HEADER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  @Test
  public void parsesAndPrintsTheHeader() {
    TraceParent parsed = TraceParent.parse(HEADER);
    assertEquals(HEADER, parsed.toString());
    assertEquals("4bf92f3577b34da6a3ce929d0e0e4736", parsed.traceId());
    TraceParent fresh = TraceParent.generate();
    assertEquals(fresh.toString(), TraceParent.parse(fresh.toString()).toString());
    assertNotEquals(fresh.traceId(), TraceParent.generate().traceId());
  }

  @Test
  public void refusesMalformedHeaders() {
    for (String bad :
        new String[] {
          "",
          "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
          "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        }) {
      assertThrows(bad, IllegalArgumentException.class, () -> TraceParent.parse(bad));
    }
  }

  /** A real (in-process) gRPC server that records the traceparent of every call it gets. */
  @Test
  public void everyCallCarriesTheTraceParentAndACallersOwnWins() throws Exception {
    List<String> seen = new ArrayList<>();
    ServerInterceptor recorder =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            List<String> values = new ArrayList<>();
            Iterable<String> all = headers.getAll(TraceParent.HEADER);
            if (all != null) {
              all.forEach(values::add);
            }
            seen.add(values.toString());
            return next.startCall(call, headers);
          }
        };
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name)
            .addService(ServerInterceptors.intercept(new EmbedderGrpc.EmbedderImplBase() {}, recorder))
            .build()
            .start();
    ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
    try {
      TraceParent trace = TraceParent.generate();
      EmbedderGrpc.EmbedderBlockingStub stub =
          EmbedderGrpc.newBlockingStub(ClientInterceptors.intercept(channel, trace));
      assertThrows(StatusRuntimeException.class, () -> stub.embed(EmbedRequest.getDefaultInstance()));
      Metadata own = new Metadata();
      own.put(TraceParent.HEADER, HEADER);
      EmbedderGrpc.EmbedderBlockingStub withOwn =
          EmbedderGrpc.newBlockingStub(
              ClientInterceptors.intercept(channel, trace, MetadataUtils.newAttachHeadersInterceptor(own)));
      assertThrows(StatusRuntimeException.class, () -> withOwn.embed(EmbedRequest.getDefaultInstance()));
      assertEquals(List.of("[" + trace + "]", "[" + HEADER + "]"), seen);
    } finally {
      channel.shutdownNow();
      server.shutdownNow();
    }
  }
}
