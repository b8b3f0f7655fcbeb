package dev.voxcache.client;

import dev.voxcache.v1.Conditioning;
import dev.voxcache.v1.DType;
import dev.voxcache.v1.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.List;

/**
 * Decodes {@link Tensor} messages: raw little-endian, row-major bytes (see tensor.proto).
 *
 * <p>A tensor whose byte length disagrees with product(shape) * itemsize is rejected with
 * {@link IllegalArgumentException} rather than truncated or padded.
 */
public final class Tensors {
  /** Bounds what a malformed message can make a reader allocate; matches the Python SDK. */
  public static final int MAX_ELEMENTS = 64 * 1024 * 1024;

  /** Name of the ECAPA speaker vector in {@link Conditioning#getTensorsMap()}. */
  public static final String SPEAKER = "speaker";

  private Tensors() {}

  /**
   * A read-only float view of a DTYPE_FLOAT32 tensor, without copying. The protobuf bytes
   * are little-endian whatever the host order, hence the explicit {@link ByteOrder}.
   */
  public static FloatBuffer float32View(Tensor tensor) {
    if (tensor.getDtype() != DType.DTYPE_FLOAT32) {
      throw new IllegalArgumentException("tensor dtype is " + tensor.getDtype() + ", expected DTYPE_FLOAT32");
    }
    checkSize(tensor, 4);
    return tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
  }

  /**
   * The elements as a new float array, row-major. DTYPE_FLOAT16 is widened exactly (every
   * binary16 value is representable in binary32).
   */
  public static float[] toFloats(Tensor tensor) {
    if (tensor.getDtype() == DType.DTYPE_FLOAT16) {
      checkSize(tensor, 2);
      ShortBuffer halves = tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
      float[] out = new float[halves.remaining()];
      for (int i = 0; i < out.length; i++) {
        out[i] = halfToFloat(halves.get(i));
      }
      return out;
    }
    FloatBuffer view = float32View(tensor);
    float[] out = new float[view.remaining()];
    view.get(out);
    return out;
  }

  /** The speaker vector of ECAPA conditioning: 192 float32 values, L2-normalised. */
  public static float[] speaker(Conditioning conditioning) {
    Tensor tensor = conditioning.getTensorsMap().get(SPEAKER);
    if (tensor == null) {
      throw new IllegalArgumentException(
          "conditioning from encoder '" + conditioning.getEncoder() + "' has no '" + SPEAKER + "' tensor");
    }
    return toFloats(tensor);
  }

  /**
   * product(shape); an empty shape is a scalar (one element). Negative dimensions and counts
   * over {@link #MAX_ELEMENTS} are rejected, which also rules out overflow.
   */
  public static int numElements(List<Long> shape) {
    long count = 1;
    for (long dim : shape) {
      if (dim < 0) {
        throw new IllegalArgumentException("negative dimension in tensor shape " + shape);
      }
      if (dim != 0 && count > MAX_ELEMENTS / dim) {
        throw new IllegalArgumentException("tensor shape " + shape + " exceeds " + MAX_ELEMENTS + " elements");
      }
      count *= dim;
    }
    return (int) count;
  }

  private static void checkSize(Tensor tensor, int itemSize) {
    long expected = (long) numElements(tensor.getShapeList()) * itemSize;
    if (tensor.getData().size() != expected) {
      throw new IllegalArgumentException(String.format(
          "tensor of shape %s needs %d bytes of %s, got %d",
          tensor.getShapeList(), expected, tensor.getDtype(), tensor.getData().size()));
    }
  }

  /** Widens an IEEE 754 binary16 bit pattern (Float.float16ToFloat needs Java 20). */
  static float halfToFloat(short bits) {
    int h = bits & 0xffff;
    int sign = (h >>> 15) << 31;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 0x1f) { // infinity or NaN: keep the payload
      return Float.intBitsToFloat(sign | 0xff << 23 | mant << 13);
    }
    if (exp != 0) { // normal: rebias the exponent from 15 to 127
      return Float.intBitsToFloat(sign | (exp + 127 - 15) << 23 | mant << 13);
    }
    float value = mant / (float) (1 << 24); // zero or subnormal: mant * 2^-24, exact
    return sign != 0 ? -value : value;
  }
}
