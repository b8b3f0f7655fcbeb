package dev.voxcache.client;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import com.google.protobuf.ByteString;
import dev.voxcache.v1.Conditioning;
import dev.voxcache.v1.DType;
import dev.voxcache.v1.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.Test;

public class TensorsTest {
  private static ByteString le32(float... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      b.putFloat(v);
    }
    return ByteString.copyFrom(b.array());
  }

  private static Tensor float32(ByteString data, Long... shape) {
    return Tensor.newBuilder().setDtype(DType.DTYPE_FLOAT32).addAllShape(Arrays.asList(shape)).setData(data).build();
  }

  @Test
  public void decodesLittleEndianRowMajor() {
    float[] want = {1f, -2.5f, 3.25f, 0f, Float.POSITIVE_INFINITY, 1e-30f};
    assertArrayEquals(want, Tensors.toFloats(float32(le32(want), 2L, 3L)), 0f);
    assertEquals(6, Tensors.float32View(float32(le32(want), 2L, 3L)).remaining());
  }

  @Test
  public void scalarAndEmpty() {
    assertArrayEquals(new float[] {7f}, Tensors.toFloats(float32(le32(7f))), 0f);
    assertEquals(0, Tensors.toFloats(float32(ByteString.EMPTY, 0L, 192L)).length);
  }

  private static Tensor float16(short[] bits, Long... shape) {
    ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
    for (short h : bits) {
      b.putShort(h);
    }
    return Tensor.newBuilder().setDtype(DType.DTYPE_FLOAT16).addAllShape(Arrays.asList(shape))
        .setData(ByteString.copyFrom(b.array())).build();
  }

  @Test
  public void widensFloat16() {
    // 1.0, -2.0, 65504 (max half), smallest subnormal 2^-24, -0, +Inf, in a (2, 3) tensor
    short[] bits = {0x3c00, (short) 0xc000, 0x7bff, 0x0001, (short) 0x8000, 0x7c00};
    float[] want = {1f, -2f, 65504f, (float) Math.scalb(1.0, -24), -0f, Float.POSITIVE_INFINITY};
    float[] got = Tensors.toFloats(float16(bits, 2L, 3L));
    assertEquals(want.length, got.length);
    for (int i = 0; i < want.length; i++) {
      assertEquals("half " + Integer.toHexString(bits[i] & 0xffff),
          Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]));
    }
    // Sized as float16, not float32: three halves need 6 bytes.
    Tensor short4 = Tensor.newBuilder().setDtype(DType.DTYPE_FLOAT16).addShape(3).setData(le32(1f)).build();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(short4));
    assertTrue(e.getMessage(), e.getMessage().contains("needs 6 bytes"));
  }

  @Test
  public void halfToFloatKnownValues() {
    int[][] cases = { // {half bits, float32 bits}
      {0x0000, 0x00000000}, // +0
      {0x8000, 0x80000000}, // -0
      {0x0001, 0x33800000}, // smallest subnormal 2^-24
      {0x8001, 0xb3800000}, // -2^-24
      {0x0200, 0x38000000}, // subnormal 2^-15
      {0x03ff, 0x387fc000}, // largest subnormal 1023 * 2^-24
      {0x0400, 0x38800000}, // smallest normal 2^-14
      {0x3555, 0x3eaaa000}, // 0.333251953125
      {0x3bff, 0x3f7fe000}, // largest below 1
      {0x3c00, 0x3f800000}, // 1.0
      {0x3c01, 0x3f802000}, // 1 + 2^-10
      {0xbc00, 0xbf800000}, // -1.0
      {0x4248, 0x40490000}, // 3.140625
      {0x7bff, 0x477fe000}, // 65504, the largest half
      {0xfbff, 0xc77fe000}, // -65504
      {0x7c00, 0x7f800000}, // +Inf
      {0xfc00, 0xff800000}, // -Inf
      {0x7e00, 0x7fc00000}, // quiet NaN
      {0xfe00, 0xffc00000}, // negative quiet NaN
      {0x7e01, 0x7fc02000}, // NaN with a payload
    };
    for (int[] c : cases) {
      float got = Tensors.halfToFloat((short) c[0]);
      assertEquals(String.format("half 0x%04x -> %s", c[0], got), c[1], Float.floatToRawIntBits(got));
    }
    for (int h : new int[] {0x7c01, 0x7dff, 0x7fff, 0xfc01, 0xffff}) {
      assertTrue(String.format("half 0x%04x is a NaN", h), Float.isNaN(Tensors.halfToFloat((short) h)));
    }
  }

  /** The reference: the value of a binary16 pattern from the textbook formula, in double arithmetic. */
  private static double halfValue(int h) {
    double sign = (h & 0x8000) != 0 ? -1 : 1;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 31) {
      return mant == 0 ? sign * Double.POSITIVE_INFINITY : Double.NaN;
    }
    if (exp == 0) {
      return sign * mant * Math.pow(2, -24);
    }
    return sign * (1 + mant / 1024.0) * Math.pow(2, exp - 15);
  }

  /** An independent encoder for values binary16 represents exactly. */
  private static int toHalf(float f) {
    int sign = (Float.floatToRawIntBits(f) < 0) ? 0x8000 : 0;
    double v = Math.abs((double) f);
    if (Double.isInfinite(v)) {
      return sign | 0x7c00;
    }
    if (v < Math.pow(2, -14)) {
      return sign | (int) (v / Math.pow(2, -24)); // zero or subnormal
    }
    int exp = Math.getExponent(v); // v = m * 2^exp, m in [1, 2)
    return sign | (exp + 15) << 10 | (int) ((v / Math.pow(2, exp) - 1) * 1024);
  }

  @Test
  public void everyHalfPatternMatchesTheFormulaAndRoundTrips() {
    short[] all = new short[65536];
    for (int h = 0; h < all.length; h++) {
      all[h] = (short) h;
    }
    float[] got = Tensors.toFloats(float16(all, 256L, 256L));
    for (int h = 0; h < all.length; h++) {
      double want = halfValue(h);
      String what = String.format("half 0x%04x -> %s", h, got[h]);
      if (Double.isNaN(want)) {
        assertTrue(what + ", want NaN", Float.isNaN(got[h]));
        continue;
      }
      assertEquals(what, Double.doubleToRawLongBits(want), Double.doubleToRawLongBits(got[h]));
      assertEquals(what + " -> back", h, toHalf(got[h]));
    }
  }

  @Test
  public void readsNamedTensors() {
    Conditioning c = Conditioning.newBuilder().setEncoder("indextts2")
        .putTensors(Tensors.STYLE, float16(new short[] {0x3800, (short) 0xc400}, 1L, 2L)) // 0.5, -4
        .putTensors(Tensors.REF_MEL, float32(le32(1f), 1L, 1L, 2L))
        .build();
    assertArrayEquals(new float[] {0.5f, -4f}, Tensors.floats(c, Tensors.STYLE), 0f);
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Tensors.floats(c, Tensors.REF_MEL));
    assertTrue(bad.getMessage(), bad.getMessage().contains("tensor 'ref_mel'"));
    IllegalArgumentException missing =
        assertThrows(IllegalArgumentException.class, () -> Tensors.floats(c, Tensors.EMO_COND_EMB));
    assertTrue(missing.getMessage(), missing.getMessage().contains("'indextts2' has no 'emo_cond_emb'"));
  }

  @Test
  public void tensorNames() {
    // The names the Embedder's encoders write; a typo here would miss every tensor.
    assertEquals(Arrays.asList("speaker", "spk_cond_emb", "style", "prompt_condition", "ref_mel", "emo_cond_emb"),
        Arrays.asList(Tensors.SPEAKER, Tensors.SPK_COND_EMB, Tensors.STYLE, Tensors.PROMPT_CONDITION,
            Tensors.REF_MEL, Tensors.EMO_COND_EMB));
  }

  @Test
  public void rejectsTensorsThatDisagreeWithTheirShape() {
    assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(float32(le32(1f, 2f), 192L)));
    assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(float32(le32(1f, 2f), 1L)));
    assertThrows(IllegalArgumentException.class,
        () -> Tensors.toFloats(float32(ByteString.copyFrom(new byte[3]), 1L)));
    assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(float32(ByteString.EMPTY, -1L, -4L)));
    assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(float32(ByteString.EMPTY, 1L << 40, 1L << 40)));
    Tensor unspecified = Tensor.newBuilder().addShape(1).setData(le32(1f)).build();
    assertThrows(IllegalArgumentException.class, () -> Tensors.toFloats(unspecified));
  }

  @Test
  public void speakerNeedsTheSpeakerTensor() {
    assertThrows(IllegalArgumentException.class,
        () -> Tensors.speaker(Conditioning.newBuilder().setEncoder("ecapa").build()));
    Conditioning c = Conditioning.newBuilder().putTensors(Tensors.SPEAKER, float32(le32(0.6f, 0.8f), 2L)).build();
    assertArrayEquals(new float[] {0.6f, 0.8f}, Tensors.speaker(c), 0f);
  }
}
