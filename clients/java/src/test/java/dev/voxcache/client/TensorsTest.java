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

  @Test
  public void widensFloat16() {
    // 1.0, -2.0, 65504 (max half), smallest subnormal 2^-24, +Inf
    short[] bits = {0x3c00, (short) 0xc000, 0x7bff, 0x0001, 0x7c00};
    ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
    for (short h : bits) {
      b.putShort(h);
    }
    Tensor half = Tensor.newBuilder().setDtype(DType.DTYPE_FLOAT16).addShape(bits.length)
        .setData(ByteString.copyFrom(b.array())).build();
    float[] want = {1f, -2f, 65504f, (float) Math.scalb(1.0, -24), Float.POSITIVE_INFINITY};
    assertArrayEquals(want, Tensors.toFloats(half), 0f);
    assertTrue(Float.isNaN(Tensors.halfToFloat((short) 0x7e00)));
    assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(Tensors.halfToFloat((short) 0x8000)));
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
