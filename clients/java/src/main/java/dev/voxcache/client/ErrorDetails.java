package dev.voxcache.client;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * What a failed voxcache call says, decoded from its {@code google.rpc.Status} by {@link
 * VoxcacheErrors#details(Throwable)}: the status code and message, the field violations of its
 * {@code google.rpc.BadRequest} detail, and its {@code google.rpc.ResourceInfo} detail. Immutable.
 */
public final class ErrorDetails {
  /** One entry of a {@code google.rpc.BadRequest}. */
  public static final class FieldViolation {
    private final String field;
    private final String description;

    public FieldViolation(String field, String description) {
      this.field = Objects.requireNonNull(field);
      this.description = Objects.requireNonNull(description);
    }

    /** The request field at fault, as a path in the request: "audio", "voice_id", "reference_audio", ... */
    public String field() {
      return field;
    }

    /** What is wrong with it, for a person. */
    public String description() {
      return description;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof FieldViolation
          && field.equals(((FieldViolation) o).field)
          && description.equals(((FieldViolation) o).description);
    }

    @Override
    public int hashCode() {
      return Objects.hash(field, description);
    }

    @Override
    public String toString() {
      return field + ": " + description;
    }
  }

  private final Status.Code code;
  private final String message;
  private final List<FieldViolation> fieldViolations;
  private final String resourceType;
  private final String resourceName;

  ErrorDetails(Status.Code code, String message, List<FieldViolation> fieldViolations,
      String resourceType, String resourceName) {
    this.code = Objects.requireNonNull(code);
    this.message = Objects.requireNonNull(message);
    this.fieldViolations = Collections.unmodifiableList(new ArrayList<>(fieldViolations));
    this.resourceType = resourceType;
    this.resourceName = resourceName;
  }

  /** The gRPC status code; UNKNOWN for a throwable that carries no gRPC status. */
  public Status.Code code() {
    return code;
  }

  /** The status message ("" when the server sent none). */
  public String message() {
    return message;
  }

  /**
   * The BadRequest violations in the order the server sent them; empty when the status has no
   * BadRequest. An empty oneof names every one of its members (Embed without input: "audio" and
   * "voice_id").
   */
  public List<FieldViolation> fieldViolations() {
    return fieldViolations;
  }

  /** The field paths of {@link #fieldViolations()}, in order. */
  public List<String> fields() {
    List<String> fields = new ArrayList<>(fieldViolations.size());
    for (FieldViolation v : fieldViolations) {
      fields.add(v.field());
    }
    return Collections.unmodifiableList(fields);
  }

  /** Whether a field violation names {@code field}. */
  public boolean hasField(String field) {
    return fields().contains(field);
  }

  /** Whether the status carries a ResourceInfo (NOT_FOUND / ALREADY_EXISTS of a voice). */
  public boolean hasResource() {
    return resourceType != null;
  }

  /**
   * ResourceInfo.resource_type, e.g. {@link VoxcacheErrors#VOICE_RESOURCE_TYPE}; "" when there is
   * no ResourceInfo.
   */
  public String resourceType() {
    return resourceType == null ? "" : resourceType;
  }

  /** ResourceInfo.resource_name: for a voice, its id; "" when there is no ResourceInfo. */
  public String resourceName() {
    return resourceName == null ? "" : resourceName;
  }

  @Override
  public String toString() {
    return code + " \"" + message + "\" fields=" + fields()
        + (hasResource() ? " resource=" + resourceType + " " + resourceName : "");
  }
}
