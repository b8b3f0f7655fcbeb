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

  // Well-known names in Conditioning.getTensorsMap(), by encoder. Shapes are row-major; T is the
  // reference's length in w2v-BERT frames (about 50 per second), T' in 22.05 kHz mel frames (about
  // 86 per second). IndexTTS2 bundles may be stored as float16 (the Embedder's
  // --indextts2-float16); toFloats and floats widen them to float32.

  /** ECAPA's speaker vector: float32 (192,), L2-normalised. */
  public static final String SPEAKER = "speaker";
  /** IndexTTS2's semantic speaker conditioning: (1, T, 1024), w2v-BERT 2.0 layer 17, normalised. */
  public static final String SPK_COND_EMB = "spk_cond_emb";
  /** IndexTTS2's CAMPPlus style vector: (1, 192). */
  public static final String STYLE = "style";
  /** IndexTTS2's s2mel prompt: (1, T', 512). */
  public static final String PROMPT_CONDITION = "prompt_condition";
  /** IndexTTS2's reference log-mel spectrogram: (1, 80, T'). */
  public static final String REF_MEL = "ref_mel";
  /**
   * IndexTTS2's emotion conditioning, shaped like {@link #SPK_COND_EMB}. Optional: without it the
   * Synthesizer uses {@link #SPK_COND_EMB}.
   */
  public static final String EMO_COND_EMB = "emo_cond_emb";

  private Tensors() {}

  /**
   * A read-only float view of a DTYPE_FLOAT32 tensor, without copying. The protobuf bytes
   * are little-endian whatever the host order, hence the explicit {@link ByteOrder}. A
   * DTYPE_FLOAT16 tensor has no float view: read it with {@link #toFloats(Tensor)}.
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
    return floats(conditioning, SPEAKER);
  }

  /**
   * The tensor called {@code name} (one of the constants above), FLOAT32 or FLOAT16, as a new
   * float array in row-major order; its shape is {@code getTensorsMap().get(name).getShapeList()}.
   *
   * @throws IllegalArgumentException when the tensor is missing or inconsistent, naming it
   */
  public static float[] floats(Conditioning conditioning, String name) {
    Tensor tensor = conditioning.getTensorsMap().get(name);
    if (tensor == null) {
      throw new IllegalArgumentException(
          "conditioning from encoder '" + conditioning.getEncoder() + "' has no '" + name + "' tensor");
    }
    try {
      return toFloats(tensor);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("tensor '" + name + "': " + e.getMessage(), e);
    }
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

  /**
   * Widens an IEEE 754 binary16 bit pattern, as read little-endian from a FLOAT16 tensor, to
   * float (Float.float16ToFloat needs Java 20). Exact: signed zeros, subnormals, normals and
   * infinities keep their value; a NaN stays a NaN.
   */
  public static float halfToFloat(short bits) {
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
