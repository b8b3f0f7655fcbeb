package dev.voxcache.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ResourceInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the rich error model of voxcache refusals: every one is a {@code google.rpc.Status} with
 * a {@code google.rpc.BadRequest} naming the fields at fault, and NOT_FOUND / ALREADY_EXISTS of a
 * voice also carry a {@code google.rpc.ResourceInfo} naming it.
 *
 * <pre>{@code
 * try {
 *   embedder.embed(EmbedRequest.newBuilder().setVoiceId("narrator").build());
 * } catch (StatusRuntimeException e) {
 *   ErrorDetails d = VoxcacheErrors.details(e);
 *   if (d.code() == Status.Code.NOT_FOUND && d.hasResource()) {
 *     System.err.println("no voice called " + d.resourceName());
 *   }
 * }
 * }</pre>
 *
 * <p>Needs {@code com.google.rpc} (Maven: com.google.api.grpc:proto-google-common-protos, a
 * dependency of grpc-protobuf; Debian: libgoogle-common-protos-java) on the class path.
 */
public final class VoxcacheErrors {
  /** ResourceInfo.resource_type of a registered voice. */
  public static final String VOICE_RESOURCE_TYPE = "voxcache.v1.Voice";

  private VoxcacheErrors() {}

  /**
   * Decodes the status of a failed call in one step. {@code error} is usually a {@link
   * io.grpc.StatusRuntimeException} (blocking and future stubs) or {@link io.grpc.StatusException}
   * (async observers); the first of those in its cause chain is read, so a wrapped one works too.
   * A throwable without a gRPC status gives code UNKNOWN and its own message. Details that are
   * neither BadRequest nor ResourceInfo, or that fail to parse, are skipped; several BadRequests
   * are concatenated and the first ResourceInfo wins.
   */
  public static ErrorDetails details(Throwable error) {
    Status status = Status.fromThrowable(error);
    String message = status.getDescription();
    if (message == null) {
      // No description: either the server sent none, or there is no status at all.
      message = hasStatus(error) || error.getMessage() == null ? "" : error.getMessage();
    }
    List<ErrorDetails.FieldViolation> violations = new ArrayList<>();
    String resourceType = null;
    String resourceName = null;
    com.google.rpc.Status proto = StatusProto.fromThrowable(error);
    if (proto != null) {
      for (Any detail : proto.getDetailsList()) {
        try {
          if (detail.is(BadRequest.class)) {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new ErrorDetails.FieldViolation(v.getField(), v.getDescription()));
            }
          } else if (detail.is(ResourceInfo.class) && resourceType == null) {
            ResourceInfo info = detail.unpack(ResourceInfo.class);
            resourceType = info.getResourceType();
            resourceName = info.getResourceName();
          }
        } catch (InvalidProtocolBufferException e) {
          // A detail that does not parse says nothing we can use; the code and message still do.
        }
      }
    }
    return new ErrorDetails(status.getCode(), message, violations, resourceType, resourceName);
  }

  private static boolean hasStatus(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause()) {
      if (t instanceof io.grpc.StatusRuntimeException || t instanceof io.grpc.StatusException) {
        return true;
      }
    }
    return false;
  }
}
