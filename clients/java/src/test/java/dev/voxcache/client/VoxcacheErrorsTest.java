package dev.voxcache.client;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ResourceInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Arrays;
import java.util.Collections;
import org.junit.Test;

public class VoxcacheErrorsTest {
  private static BadRequest badRequest(String description, String... fields) {
    BadRequest.Builder b = BadRequest.newBuilder();
    for (String field : fields) {
      b.addFieldViolations(BadRequest.FieldViolation.newBuilder().setField(field).setDescription(description));
    }
    return b.build();
  }

  /** The exception a blocking stub throws for this status (details in the trailers, as on the wire). */
  private static StatusRuntimeException refusal(Code code, String message, Any... details) {
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
        .setCode(code.getNumber()).setMessage(message).addAllDetails(Arrays.asList(details)).build());
  }

  @Test
  public void emptyOneofNamesEveryMember() {
    String msg = "set exactly one of audio or voice_id";
    ErrorDetails d = VoxcacheErrors.details(
        refusal(Code.INVALID_ARGUMENT, msg, Any.pack(badRequest(msg, "audio", "voice_id"))));
    assertEquals(Status.Code.INVALID_ARGUMENT, d.code());
    assertEquals(msg, d.message());
    assertEquals(Arrays.asList("audio", "voice_id"), d.fields());
    assertEquals(new ErrorDetails.FieldViolation("voice_id", msg), d.fieldViolations().get(1));
    assertTrue(d.hasField("audio"));
    assertFalse(d.hasField("encoder"));
    assertFalse(d.hasResource());
    assertEquals("", d.resourceType());
    assertEquals("", d.resourceName());
  }

  @Test
  public void unknownVoiceNamesItsResource() {
    String msg = "voice 'no-such-voice' is not registered";
    StatusRuntimeException e = refusal(Code.NOT_FOUND, msg,
        Any.pack(ResourceInfo.newBuilder().setResourceType(VoxcacheErrors.VOICE_RESOURCE_TYPE)
            .setResourceName("no-such-voice").setDescription(msg).build()),
        Any.pack(badRequest(msg, "voice_id")),
        // The first ResourceInfo wins.
        Any.pack(ResourceInfo.newBuilder().setResourceType("other").setResourceName("other").build()));
    // Wrapped, as callers often do: the status is still found.
    ErrorDetails d = VoxcacheErrors.details(new IllegalStateException("embedding the narrator", e));
    assertEquals(Status.Code.NOT_FOUND, d.code());
    assertEquals(msg, d.message());
    assertEquals(Collections.singletonList("voice_id"), d.fields());
    assertTrue(d.hasResource());
    assertEquals("voxcache.v1.Voice", d.resourceType());
    assertEquals("no-such-voice", d.resourceName());
  }

  @Test
  public void concatenatesBadRequestsAndSkipsWhatItCannotRead() {
    Any garbage = Any.newBuilder().setTypeUrl("type.googleapis.com/google.rpc.BadRequest")
        .setValue(ByteString.copyFrom(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff})).build();
    Any unrelated = Any.pack(com.google.rpc.DebugInfo.newBuilder().setDetail("a stack trace").build());
    ErrorDetails d = VoxcacheErrors.details(refusal(Code.INVALID_ARGUMENT, "two problems",
        Any.pack(badRequest("empty", "text")), garbage, unrelated, Any.pack(badRequest("too fast", "speed"))));
    assertEquals(Arrays.asList("text", "speed"), d.fields());
    assertEquals("too fast", d.fieldViolations().get(1).description());
    assertFalse(d.hasResource());
  }

  @Test
  public void statusWithoutDetailsAndOtherThrowables() {
    ErrorDetails d = VoxcacheErrors.details(Status.UNAVAILABLE.withDescription("embedder unreachable").asRuntimeException());
    assertEquals(Status.Code.UNAVAILABLE, d.code());
    assertEquals("embedder unreachable", d.message());
    assertEquals(Collections.emptyList(), d.fields());
    assertFalse(d.hasResource());

    ErrorDetails bare = VoxcacheErrors.details(Status.CANCELLED.asException());
    assertEquals(Status.Code.CANCELLED, bare.code());
    assertEquals("", bare.message());

    ErrorDetails plain = VoxcacheErrors.details(new java.io.IOException("disk full"));
    assertEquals(Status.Code.UNKNOWN, plain.code());
    assertEquals("disk full", plain.message());
    assertEquals(Collections.emptyList(), plain.fieldViolations());
  }
}
